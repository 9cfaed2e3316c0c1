/* tkd_hal_stdio.c: the HAL for a host process, serial over stdin/stdout, ticks
 * from CLOCK_MONOTONIC in microseconds. With the TFLM runtime it makes the whole
 * firmware a host program: pipe MLPerf Tiny commands in, read replies out. */
#define _POSIX_C_SOURCE 200809L
#include <poll.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "tkd_core.h"
#include "tkd_hal.h"

static unsigned char s_buffer[4096];
static size_t s_head, s_length;
static int s_end_of_input;

void tkd_hal_init(uint32_t baud) { (void)baud; }

int tkd_hal_read_byte(void) {
  struct pollfd ready = {0, POLLIN, 0};
  ssize_t count;
  if (s_head < s_length) return s_buffer[s_head++];
  if (s_end_of_input || poll(&ready, 1, 0) <= 0) return -1;
  count = read(0, s_buffer, sizeof s_buffer);
  if (count <= 0) {
    s_end_of_input = 1;
    return -1;
  }
  s_head = 1;
  s_length = (size_t)count;
  return s_buffer[0];
}

void tkd_hal_write(const char *data, size_t len) {
  fwrite(data, 1, len, stdout);
  fflush(stdout);
}

uint32_t tkd_hal_ticks(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (uint32_t)((uint64_t)now.tv_sec * 1000000u + (uint64_t)now.tv_nsec / 1000u);
}

uint32_t tkd_hal_ticks_per_second(void) { return 1000000u; }

const char *tkd_hal_tick_unit(void) { return "us"; }

/* Runs until stdin closes; waits in poll() instead of spinning. */
int main(void) {
  struct pollfd ready = {0, POLLIN, 0};
  tkd_core_setup();
  while (!s_end_of_input) {
    tkd_core_poll();
    if (s_head == s_length && !s_end_of_input) (void)poll(&ready, 1, 100);
  }
  tkd_core_poll();
  return 0;
}
