/* libfuzzer_core.c: clang's coverage-guided libFuzzer over the firmware core's parser.
 *
 * Built with -fsanitize=fuzzer,address,undefined by tests/firmware/test_fw_libfuzzer.py.
 * Each input restarts the real tkd_core.c (through the host library's byte queues) and is
 * delivered in chunks of 1..64 bytes (the first byte picks the size), the device clock
 * moving 100 ms between chunks so stalled tkd-bulk transfers time out. After each input
 * the checks of fuzz_checks.h run: printable CR LF output, no overflow, and the core still
 * answers name%. A sanitizer report, a failed check or an input that runs past libFuzzer's
 * -timeout (an unbounded loop such as infer 4294967295) is a crash. */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_checks.h"
#include "tkd_config.h"
#include "tkd_core.h"

#define TICKS_PER_SECOND 1000000u
#define TICKS_PER_CHUNK (TICKS_PER_SECOND / 10u)

static uint32_t g_ticks;
static unsigned long long g_inputs;

static unsigned long long fuzz_state(void) { return g_inputs; }

static int fuzz_init(void) { return 0; }

static int fuzz_invoke(const uint8_t *in, size_t n, int8_t *out, size_t m) {
  size_t i;
  for (i = 0; i < m; ++i) out[i] = (int8_t)(in[i % n] ^ (uint8_t)i);
  g_ticks += 1000u;
  return 0;
}

static uint32_t fuzz_ticks(void) { return g_ticks; }

static void jump_clock(void) { g_ticks += 2u * TICKS_PER_SECOND; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  size_t chunk;
  static int configured;
  if (!configured) {
    tkd_host_configure(fuzz_init, fuzz_invoke, fuzz_ticks, TICKS_PER_SECOND, "us", 1234u);
    configured = 1;
  }
  ++g_inputs;
  tkd_core_setup();
  check_output();
  if (size == 0u) return 0;
  chunk = 1u + data[0] % 64u;
  for (++data, --size; size != 0u;) {
    size_t accepted = tkd_host_feed(data, size < chunk ? size : chunk);
    tkd_core_poll();
    check_output();
    g_ticks += TICKS_PER_CHUNK;
    data += accepted;
    size -= accepted;
  }
  check_name_answered(jump_clock);
  return 0;
}
