/* fuzz_core.c: a long randomized test of the firmware core's protocol parser.
 *
 * Built with -fsanitize=address,undefined by tests/firmware/test_fuzz_core.py. Feeds the
 * real tkd_core.c (through the host library's byte queues) with random mixtures of valid
 * commands, malformed numbers, over-long commands, hex runs, raw tkd-bulk transfers with
 * right and wrong checksums, random bytes and clock jumps, in random chunk sizes. Checks:
 * the sanitizers see nothing, every byte written is printable ASCII or CR LF (no stray
 * memory), lines end in CR LF, output never overflows, and afterwards the core still
 * answers name% correctly. Usage: fuzz_core ITERATIONS SEED */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tkd_config.h"
#include "tkd_core.h"
#include "fuzz_checks.h"

#define TICKS_PER_SECOND 1000000u

static uint32_t g_ticks;
static uint64_t g_rng;

static uint32_t next_random(void) { /* xorshift64* */
  g_rng ^= g_rng >> 12;
  g_rng ^= g_rng << 25;
  g_rng ^= g_rng >> 27;
  return (uint32_t)((g_rng * 2685821657736338717ull) >> 32);
}
static uint32_t below(uint32_t n) { return n ? next_random() % n : 0u; }
static unsigned long long fuzz_state(void) { return (unsigned long long)g_rng; }

static int fuzz_init(void) { return 0; }
static int fuzz_invoke(const uint8_t *in, size_t n, int8_t *out, size_t m) {
  size_t i;
  for (i = 0; i < m; ++i) out[i] = (int8_t)(in[i % n] ^ (uint8_t)i);
  g_ticks += 1000u + below(5000u);
  return 0;
}
static uint32_t fuzz_ticks(void) { return g_ticks; }
static void jump_clock(void) { g_ticks += 2u * TICKS_PER_SECOND; }

/* Deliver bytes in random chunk sizes, polling after each chunk. */
static void deliver(const uint8_t *data, size_t length) {
  while (length != 0u) {
    size_t chunk = 1u + below(length < 64u ? (uint32_t)length : 64u), accepted;
    if (chunk > length) chunk = length;
    accepted = tkd_host_feed(data, chunk);
    tkd_core_poll();
    check_output();
    data += accepted;
    length -= accepted;
    g_bytes_in += accepted;
  }
}
static void deliver_text(const char *text) { deliver((const uint8_t *)text, strlen(text)); }

static const char *const kFragments[] = {
    "name%", "profile%", "help%", "timestamp%", "db load ", "db ", "db print%", "infer ",
    "results%", "tkd-info%", "tkd-ticks%", "tkd-output%", "tkd-bulk ", "%", " ", "  ",
    "16", "0", "1", "15", "17", "4294967295", "4294967296", "99999999999999999999", "ffffffff",
    "123456789", "-1", "+3", "\r\n", "\n", "zz", "0x10", "db load 16%", "infer 1 0%",
    "infer 0%", "infer 2 1%", "db 00112233445566778899aabbccddeeff%", "db 0%", "db gg%",
    "tkd-bulk 16 0%", "tkd-bulk 0 1%", "tkd-bulk 17 ffffffff%", "tkd-bulk 16 fffffffff%",
    "db load 16 16%", "infer 1 2 3%", "a b c d e f%", "%%%%", "results", "tkd-"};

static uint32_t crc32(const uint8_t *data, size_t length) {
  uint32_t crc = 0xffffffffu;
  size_t i;
  unsigned bit;
  for (i = 0; i < length; ++i) {
    crc ^= data[i];
    for (bit = 0; bit < 8u; ++bit) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

static void one_action(void) {
  uint8_t buffer[512];
  char text[640];
  size_t length, i;
  switch (below(10u)) {
    case 0: /* random bytes */
      length = below(sizeof buffer);
      for (i = 0; i < length; ++i) buffer[i] = (uint8_t)next_random();
      deliver(buffer, length);
      break;
    case 1: /* an over-long command of printable characters */
      length = below(sizeof text - 2u);
      for (i = 0; i < length; ++i) text[i] = (char)(0x21 + below(94u));
      text[length] = '%';
      text[length + 1] = '\0';
      deliver_text(text);
      break;
    case 2: /* a run of hex digits, maybe odd, maybe too long */
      length = below(120u);
      memcpy(text, "db ", 3u);
      for (i = 0; i < length; ++i) text[3 + i] = "0123456789abcdefABCDEF"[below(22u)];
      text[3 + length] = '%';
      text[4 + length] = '\0';
      deliver_text(text);
      break;
    case 3: { /* a tkd-bulk transfer: right or wrong CRC, complete or cut short */
      uint32_t size = below(24u), crc;
      int cut = below(4u) == 0u;
      for (i = 0; i < size; ++i) buffer[i] = (uint8_t)next_random();
      crc = crc32(buffer, size) ^ (below(3u) == 0u ? 1u + below(255u) : 0u);
      snprintf(text, sizeof text, "tkd-bulk %u %x%%", (unsigned)size, (unsigned)crc);
      deliver_text(text);
      deliver(buffer, cut && size ? below(size) : size);
      break;
    }
    case 4: /* the clock jumps (a stalled tkd-bulk times out) */
      g_ticks += below(3u) == 0u ? 2u * TICKS_PER_SECOND : below(TICKS_PER_SECOND);
      tkd_core_poll();
      check_output();
      break;
    default: /* a sequence of fragments */
      length = 1u + below(6u);
      for (i = 0; i < length; ++i) {
        deliver_text(kFragments[below(sizeof kFragments / sizeof kFragments[0])]);
      }
      break;
  }
}

int main(int argc, char **argv) {
  unsigned long iterations = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000ul;
  unsigned long seed = argc > 2 ? strtoul(argv[2], NULL, 10) : 1ul;
  unsigned long i;
  g_rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)seed;
  tkd_host_configure(fuzz_init, fuzz_invoke, fuzz_ticks, TICKS_PER_SECOND, "us", 1234u);
  tkd_core_setup();
  check_output();
  for (i = 0; i < iterations; ++i) {
    one_action();
    if (below(5000u) == 0u) { /* a reset in the middle of anything */
      tkd_core_setup();
      check_output();
    }
  }
  check_name_answered(jump_clock);
  printf("~~~FUZZ PASSED~~~ %lu actions, %llu bytes in, %llu bytes out, %llu lines\n", iterations,
         g_bytes_in, g_bytes_out, g_lines);
  return 0;
}
