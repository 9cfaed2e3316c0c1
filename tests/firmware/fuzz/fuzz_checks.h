/* fuzz_checks.h: what both fuzz drivers check after feeding the firmware core.
 *
 * Every byte written is printable ASCII or CR LF (no stray memory), lines end in CR LF,
 * output never overflows, and the core still answers name% at the end. Included by
 * fuzz_core.c (the gcc randomized run) and libfuzzer_core.c (clang's libFuzzer). */
#ifndef FUZZ_CHECKS_H_
#define FUZZ_CHECKS_H_

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tkd_core.h"

typedef int (*init_fn)(void);
typedef int (*invoke_fn)(const uint8_t *, size_t, int8_t *, size_t);
typedef uint32_t (*ticks_fn)(void);
void tkd_host_configure(init_fn, invoke_fn, ticks_fn, uint32_t, const char *, size_t);
size_t tkd_host_feed(const uint8_t *data, size_t length);
size_t tkd_host_take_output(char *buffer, size_t capacity);
int tkd_host_output_overflowed(void);

static unsigned long long g_bytes_in, g_bytes_out, g_lines;
static char g_out[1 << 20];
static int g_last_was_cr;

/* The fuzz driver's state, printed when a check fails. */
static unsigned long long fuzz_state(void);

static void fail(const char *what) {
  fprintf(stderr, "FUZZ FAILURE: %s (state %llx)\n", what, fuzz_state());
  abort();
}

static void check_output(void) {
  size_t count, i;
  while ((count = tkd_host_take_output(g_out, sizeof g_out)) != 0u) {
    for (i = 0; i < count; ++i) {
      unsigned char c = (unsigned char)g_out[i];
      if (c == '\n') {
        if (!g_last_was_cr) fail("a line ends in LF without CR");
        ++g_lines;
      } else if (c != '\r' && (c < 0x20u || c > 0x7eu)) {
        fail("a byte that is not printable ASCII was written");
      }
      g_last_was_cr = c == '\r';
    }
    g_bytes_out += count;
  }
  if (tkd_host_output_overflowed()) fail("output overflowed");
}

/* Whatever state the core was left in, it must come back: a '%' ends a half-received
 * command (which may start a tkd-bulk transfer), `jump_clock` moves the device clock past
 * the tkd-bulk timeout, and then name% must get its exact answer. */
static void check_name_answered(void (*jump_clock)(void)) {
  size_t count;
  tkd_host_feed((const uint8_t *)"%", 1u);
  tkd_core_poll();
  check_output();
  jump_clock();
  tkd_core_poll();
  check_output();
  tkd_host_feed((const uint8_t *)"name%", 5u);
  tkd_core_poll();
  count = tkd_host_take_output(g_out, sizeof g_out - 1u);
  g_out[count] = '\0';
  if (strcmp(g_out, "m-name-dut-[tinykd]\r\nm-ready\r\n") != 0) {
    fail("the core does not answer name% after the fuzzing");
  }
}

#endif /* FUZZ_CHECKS_H_ */
