/* Test firmware for the mps2-an386 HAL alone (no tinykd core): one command per line.
 *   ping        -> pong
 *   unit        -> <tick unit> <ticks per second>
 *   spin N      -> ticks spent in a loop of exactly 2*N instructions (subs + bne)
 *   echo TEXT   -> TEXT
 *   fault       -> executes an undefined instruction (the HAL reports the fault)
 */
#include <stdint.h>
#include <string.h>

#include "tkd_hal.h"

static void write_str(const char *text) { tkd_hal_write(text, strlen(text)); }

static void write_u32(uint32_t value) {
  char digits[11];
  int n = 0;
  do {
    digits[n++] = (char)('0' + value % 10u);
    value /= 10u;
  } while (value);
  while (n) tkd_hal_write(&digits[--n], 1);
}

static uint32_t parse_u32(const char *text) {
  uint32_t value = 0;
  while (*text >= '0' && *text <= '9') value = value * 10u + (uint32_t)(*text++ - '0');
  return value;
}

static uint32_t spin(uint32_t iterations) {
  uint32_t start = tkd_hal_ticks();
  __asm volatile("1: subs %0, %0, #1\n\tbne 1b" : "+r"(iterations) : : "cc");
  return tkd_hal_ticks() - start;
}

static void handle(const char *line) {
  if (strcmp(line, "ping") == 0) {
    write_str("pong");
  } else if (strcmp(line, "unit") == 0) {
    write_str(tkd_hal_tick_unit());
    write_str(" ");
    write_u32(tkd_hal_ticks_per_second());
  } else if (strncmp(line, "spin ", 5) == 0) {
    write_u32(spin(parse_u32(line + 5)));
  } else if (strncmp(line, "echo ", 5) == 0) {
    write_str(line + 5);
  } else if (strcmp(line, "fault") == 0) {
    __asm volatile("udf #0");
  } else {
    write_str("unknown");
  }
  write_str("\n");
}

int main(void) {
  static char line[256];
  size_t len = 0;
  tkd_hal_init(115200);
  write_str("probe ready\n");
  for (;;) {
    int byte = tkd_hal_read_byte();
    if (byte < 0) continue;
    if (byte == '\n') {
      line[len] = '\0';
      handle(line);
      len = 0;
    } else if (len < sizeof line - 1) {
      line[len++] = (char)byte;
    }
  }
}
