/* The few newlib system calls a bare-metal image needs (no semihosting, no OS).
 *
 * malloc grows into the SRAM between .bss and the stack (symbols from mps2_an386.ld); writes
 * to stdout/stderr go to UART0, so a stray printf shows up instead of vanishing; exit and
 * abort report themselves like a fault.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "mps2_an386.h"
#include "tkd_hal.h"

extern char __heap_start__, __heap_end__;

void *_sbrk(ptrdiff_t increment);
int _write(int fd, const char *data, int len);
int _read(int fd, char *data, int len);
int _close(int fd);
int _fstat(int fd, struct stat *st);
int _isatty(int fd);
int _lseek(int fd, int offset, int whence);
int _kill(int pid, int sig);
int _getpid(void);
void _exit(int status);

void *_sbrk(ptrdiff_t increment) {
  static char *brk = &__heap_start__;
  if (increment > &__heap_end__ - brk || increment < &__heap_start__ - brk) {
    errno = ENOMEM;
    return (void *)-1;
  }
  char *previous = brk;
  brk += increment;
  return previous;
}

int _write(int fd, const char *data, int len) {
  if (fd != 1 && fd != 2) {
    errno = EBADF;
    return -1;
  }
  tkd_hal_write(data, (size_t)len);
  return len;
}

int _read(int fd, char *data, int len) {
  (void)fd, (void)data, (void)len;
  errno = EBADF;
  return -1;
}

int _close(int fd) {
  (void)fd;
  return -1;
}

int _fstat(int fd, struct stat *st) {
  (void)fd;
  st->st_mode = S_IFCHR;
  return 0;
}

int _isatty(int fd) { return fd <= 2; }

int _lseek(int fd, int offset, int whence) {
  (void)fd, (void)offset, (void)whence;
  return 0;
}

int _kill(int pid, int sig) {
  (void)pid, (void)sig;
  mps2_halt("abort");
}

int _getpid(void) { return 1; }

void _exit(int status) {
  (void)status;
  mps2_halt("exit");
}
