/* The protocol tests' fixture runtime in C, for boards that cannot call back into Python:
 * output[k] = ((sum of input bytes + 100*k) mod 256) - 128, arena used 1234 bytes. It is the
 * formula of FixtureRuntime in tests/firmware/fw_helpers.py, so the same transcripts
 * hold on the emulated Cortex-M4. */
#include "tkd_config.h"
#include "tkd_runtime.h"

static uint8_t s_input[TKD_INPUT_BYTES];
static int8_t s_output[TKD_NUM_CLASSES];

int tkd_runtime_init(void) { return 0; }

uint8_t *tkd_runtime_input(size_t *len) {
  *len = sizeof s_input;
  return s_input;
}

int tkd_runtime_invoke(void) {
  uint32_t total = 0;
  for (size_t i = 0; i < sizeof s_input; ++i) total += s_input[i];
  for (uint32_t k = 0; k < TKD_NUM_CLASSES; ++k) {
    s_output[k] = (int8_t)((int32_t)((total + 100u * k) % 256u) - 128);
  }
  return 0;
}

const int8_t *tkd_runtime_output(size_t *len) {
  *len = sizeof s_output;
  return s_output;
}

size_t tkd_runtime_arena_used(void) { return 1234u; }
