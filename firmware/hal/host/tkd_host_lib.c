/* tkd_host_lib.c: the firmware core as a host shared library, driven from Python.
 *
 * Implements the HAL over two in-memory byte queues (Python feeds received bytes
 * and takes the written ones) and the runtime seam through callbacks (Python runs
 * the model with the TFLM Python interpreter). The protocol code is the very
 * tkd_core.c that boards run. Used by tinykd/firmware/host_core.py. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <string.h>
#include <time.h>

#include "tkd_config.h"
#include "tkd_core.h"
#include "tkd_hal.h"
#include "tkd_runtime.h"

#define TKD_HOST_RX_BYTES 65536u
#define TKD_HOST_TX_BYTES 1048576u
/* Room kept free for the longest reply one received byte can trigger (db print of a
 * full input: "-HH" per byte plus "m-buffer-" and CR LF per 8 bytes; help; results).
 * Once less is free, the core reads no further byte until Python takes the output, as
 * a UART whose transmit queue is full holds the sender: output is never lost. */
#define TKD_HOST_TX_HEADROOM (5u * (size_t)TKD_INPUT_BYTES + 16u * (size_t)TKD_NUM_CLASSES + 4096u)

typedef int (*tkd_host_init_fn)(void);
typedef int (*tkd_host_invoke_fn)(const uint8_t *input, size_t input_length, int8_t *output,
                                  size_t output_length);
typedef uint32_t (*tkd_host_ticks_fn)(void);

static uint8_t s_rx[TKD_HOST_RX_BYTES];
static size_t s_rx_head, s_rx_length;
static char s_tx[TKD_HOST_TX_BYTES + TKD_HOST_TX_HEADROOM];
static size_t s_tx_length;
static int s_tx_overflow;

static tkd_host_init_fn s_init;
static tkd_host_invoke_fn s_invoke;
static tkd_host_ticks_fn s_ticks;
static uint32_t s_ticks_per_second = 1000000u;
static char s_tick_unit[16] = "us";
static size_t s_arena_used;

static uint8_t s_model_input[TKD_INPUT_BYTES];
static int8_t s_model_output[TKD_NUM_CLASSES];

/* ---- control API (called from Python through ctypes) ------------------------ */

/* Sets the runtime callbacks and the clock. ticks == NULL: CLOCK_MONOTONIC in us. */
void tkd_host_configure(tkd_host_init_fn init, tkd_host_invoke_fn invoke, tkd_host_ticks_fn ticks,
                        uint32_t ticks_per_second, const char *tick_unit, size_t arena_used) {
  s_init = init;
  s_invoke = invoke;
  s_ticks = ticks;
  s_ticks_per_second = ticks != NULL ? ticks_per_second : 1000000u;
  strncpy(s_tick_unit, ticks != NULL ? tick_unit : "us", sizeof s_tick_unit - 1u);
  s_tick_unit[sizeof s_tick_unit - 1u] = '\0';
  s_arena_used = arena_used;
  s_rx_head = s_rx_length = 0;
  s_tx_length = 0;
  s_tx_overflow = 0;
}

/* Queues received bytes; returns how many fitted (call tkd_core_poll, then retry). */
size_t tkd_host_feed(const uint8_t *data, size_t length) {
  size_t room;
  if (s_rx_head == s_rx_length) s_rx_head = s_rx_length = 0;
  room = TKD_HOST_RX_BYTES - s_rx_length;
  if (length > room) length = room;
  memcpy(s_rx + s_rx_length, data, length);
  s_rx_length += length;
  return length;
}

/* Received bytes the core has not read yet (it pauses while its output is not taken). */
size_t tkd_host_pending_input(void) { return s_rx_length - s_rx_head; }

/* Moves up to `capacity` written bytes into `buffer`; returns the count. */
size_t tkd_host_take_output(char *buffer, size_t capacity) {
  size_t count = s_tx_length < capacity ? s_tx_length : capacity;
  memcpy(buffer, s_tx, count);
  memmove(s_tx, s_tx + count, s_tx_length - count);
  s_tx_length -= count;
  return count;
}

/* What tkd_runtime_arena_used() reports (set after the runtime's init, as on a board). */
void tkd_host_set_arena_used(size_t arena_used) { s_arena_used = arena_used; }

/* 1 if output was lost because Python did not take it in time. */
int tkd_host_output_overflowed(void) { return s_tx_overflow; }

size_t tkd_host_input_bytes(void) { return TKD_INPUT_BYTES; }
size_t tkd_host_num_classes(void) { return TKD_NUM_CLASSES; }
const char *tkd_host_model_hash(void) { return TKD_MODEL_HASH; }

/* ---- HAL ------------------------------------------------------------------- */

void tkd_hal_init(uint32_t baud) { (void)baud; }

int tkd_hal_read_byte(void) {
  if (s_rx_head == s_rx_length || s_tx_length > TKD_HOST_TX_BYTES) return -1;
  return s_rx[s_rx_head++];
}

void tkd_hal_write(const char *data, size_t length) {
  if (length > sizeof s_tx - s_tx_length) {
    s_tx_overflow = 1;
    length = sizeof s_tx - s_tx_length;
  }
  memcpy(s_tx + s_tx_length, data, length);
  s_tx_length += length;
}

uint32_t tkd_hal_ticks(void) {
  struct timespec now;
  if (s_ticks != NULL) return s_ticks();
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (uint32_t)((uint64_t)now.tv_sec * 1000000u + (uint64_t)now.tv_nsec / 1000u);
}

uint32_t tkd_hal_ticks_per_second(void) { return s_ticks_per_second; }

const char *tkd_hal_tick_unit(void) { return s_tick_unit; }

/* ---- runtime seam ---------------------------------------------------------- */

int tkd_runtime_init(void) { return s_init != NULL ? s_init() : 0; }

uint8_t *tkd_runtime_input(size_t *length) {
  *length = sizeof s_model_input;
  return s_model_input;
}

int tkd_runtime_invoke(void) {
  if (s_invoke == NULL) return -1;
  return s_invoke(s_model_input, sizeof s_model_input, s_model_output, sizeof s_model_output);
}

const int8_t *tkd_runtime_output(size_t *length) {
  *length = sizeof s_model_output;
  return s_model_output;
}

size_t tkd_runtime_arena_used(void) { return s_arena_used; }
