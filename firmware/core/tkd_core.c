/* tkd_core.c: the board-neutral benchmark firmware.
 *
 * Speaks the MLPerf Tiny device-under-test protocol (commands end in '%', every
 * reply ends in "m-ready", errors are "e-[...]") plus tinykd's "tkd-" commands.
 * It owns the command buffer, the model-sized input buffer, timing and the
 * inference loop; hardware is reached only through tkd_hal.h and the engine only
 * through tkd_runtime.h. No dynamic allocation, no libc printf: every buffer has a
 * fixed size and every received command is length-checked before use. */
#include "tkd_core.h"

#include <stdarg.h>
#include <string.h>

#include "tkd_config.h"
#include "tkd_hal.h"
#include "tkd_runtime.h"

#if !defined(TKD_INPUT_BYTES) || !defined(TKD_NUM_CLASSES) || !defined(TKD_MODEL_HASH)
#error "tkd_config.h must include the generated model_settings.h"
#endif
#if !defined(TKD_OUTPUT_SCALE) || !defined(TKD_OUTPUT_ZERO_POINT) || !defined(TKD_MODEL_NAME)
#error "model_settings.h lacks TKD_OUTPUT_SCALE, TKD_OUTPUT_ZERO_POINT or TKD_MODEL_NAME"
#endif
#ifndef TKD_BOARD_NAME
#define TKD_BOARD_NAME "unknown"
#endif
#ifndef TKD_BAUD
#define TKD_BAUD 115200u
#endif
/* Longest command text between two '%' (the MLPerf Tiny reference uses 80). */
#ifndef TKD_CMD_SIZE
#define TKD_CMD_SIZE 80u
#endif
/* A tkd-bulk transfer that stalls this long is abandoned. */
#ifndef TKD_BULK_TIMEOUT_MS
#define TKD_BULK_TIMEOUT_MS 1000u
#endif
/* Most runs (and most warmup runs) one infer command may ask for: "infer 4294967295 0"
 * would otherwise keep the board busy for days, deaf to every later command. */
#ifndef TKD_MAX_INFER_RUNS
#define TKD_MAX_INFER_RUNS 1000000u
#endif

#define TKD_PROTOCOL_VERSION "1"
#define TKD_MAX_TOKENS 4u /* command name + up to 3 arguments */
#define TKD_DEFAULT_WARMUP 10u /* MLPerf Tiny's default when W is omitted */
#define TKD_BUFFER_BYTES_PER_LINE 8u

static char s_cmd[TKD_CMD_SIZE + 1u];
static size_t s_cmd_len;
static int s_cmd_overflow;

static uint8_t s_input[TKD_INPUT_BYTES];
static size_t s_expected; /* bytes announced by "db load N" or "tkd-bulk N" */
static size_t s_loaded;   /* bytes received so far */

static size_t s_bulk_remaining; /* > 0 while raw tkd-bulk bytes are expected */
static uint32_t s_bulk_crc;
static uint32_t s_bulk_expected_crc;
static uint64_t s_bulk_last_byte;

static uint32_t s_ticks_per_second;
static uint32_t s_clock_last;
static uint64_t s_clock; /* tkd_hal_ticks() extended to 64 bits */

static int s_runtime_status; /* tkd_runtime_init() result; 0 = ready */
static int s_have_output;
static uint64_t s_timed_runs, s_ticks_total, s_ticks_min, s_ticks_max;

/* ---- output ---------------------------------------------------------------- */

static void put(const char *text) { tkd_hal_write(text, strlen(text)); }

static void put_u64(uint64_t value) {
  char digits[20];
  size_t start = sizeof digits;
  do {
    digits[--start] = (char)('0' + (int)(value % 10u));
    value /= 10u;
  } while (value != 0u);
  tkd_hal_write(digits + start, sizeof digits - start);
}

static void put_hex(uint32_t value, unsigned width) {
  static const char kHex[] = "0123456789abcdef";
  char digits[8];
  unsigned i;
  for (i = 0; i < width; ++i) {
    digits[width - 1u - i] = kHex[(value >> (4u * i)) & 0xfu];
  }
  tkd_hal_write(digits, width);
}

/* Writes one reply line and its "\r\n". Format: %s (const char *), %u (uint64_t),
 * %x (uint32_t as 8 hex digits); callers cast every argument to that exact type. */
static void line(const char *format, ...) {
  va_list args;
  va_start(args, format);
  for (; *format != '\0'; ++format) {
    if (*format != '%' || format[1] == '\0') {
      tkd_hal_write(format, 1);
      continue;
    }
    ++format;
    if (*format == 's') {
      put(va_arg(args, const char *));
    } else if (*format == 'u') {
      put_u64(va_arg(args, uint64_t));
    } else if (*format == 'x') {
      put_hex(va_arg(args, uint32_t), 8u);
    } else {
      tkd_hal_write(format, 1);
    }
  }
  va_end(args);
  put("\r\n");
}

/* ---- clock ----------------------------------------------------------------- */

static uint64_t clock_now(void) {
  uint32_t now = tkd_hal_ticks();
  s_clock += (uint32_t)(now - s_clock_last); /* wrap-safe while polled once per wrap */
  s_clock_last = now;
  return s_clock;
}

static uint64_t ticks_to_us(uint64_t ticks) {
  return (ticks / s_ticks_per_second) * 1000000u +
         ((ticks % s_ticks_per_second) * 1000000u) / s_ticks_per_second;
}

static void lap(void) { line("m-lap-us-%u", ticks_to_us(clock_now())); }

/* ---- parsing --------------------------------------------------------------- */

/* Decimal without sign, at most UINT32_MAX. */
static int parse_u32(const char *text, uint32_t *value) {
  uint64_t result = 0;
  if (*text == '\0') return 0;
  for (; *text != '\0'; ++text) {
    if (*text < '0' || *text > '9') return 0;
    result = result * 10u + (uint64_t)(*text - '0');
    if (result > 0xffffffffu) return 0;
  }
  *value = (uint32_t)result;
  return 1;
}

static int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Splits s_cmd on spaces in place; returns the token count, or TKD_MAX_TOKENS + 1
 * if there are more tokens than any command takes. */
static size_t tokenize(char *text, char *tokens[TKD_MAX_TOKENS]) {
  size_t count = 0;
  for (;;) {
    while (*text == ' ') *text++ = '\0';
    if (*text == '\0') return count;
    if (count == TKD_MAX_TOKENS) return TKD_MAX_TOKENS + 1u;
    tokens[count++] = text;
    while (*text != ' ' && *text != '\0') ++text;
  }
}

static uint32_t crc32_update(uint32_t crc, uint8_t byte) {
  unsigned bit;
  crc ^= byte;
  for (bit = 0; bit < 8u; ++bit) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  return crc;
}

/* ---- commands -------------------------------------------------------------- */

/* A handler returns 0 when its reply is complete (the core adds "m-ready"), or 1
 * when the reply continues later (tkd-bulk waits for its raw bytes). */
typedef int (*handler_fn)(char **args, size_t count);

static int cmd_name(char **args, size_t count) {
  (void)args, (void)count;
  line("m-name-dut-[tinykd]");
  return 0;
}

static int cmd_profile(char **args, size_t count) {
  (void)args, (void)count;
  line("m-profile-[ULPMark for tinyML Firmware V0.0.1]");
  line("m-model-[%s]", TKD_MODEL_NAME);
  return 0;
}

static int cmd_timestamp(char **args, size_t count) {
  (void)args, (void)count;
  lap();
  return 0;
}

static int cmd_help(char **args, size_t count) {
  (void)args, (void)count;
  put("tinykd firmware (MLPerf Tiny DUT protocol " TKD_PROTOCOL_VERSION ")\r\n"
      "help          : this text\r\n"
      "name          : device name\r\n"
      "profile       : firmware profile and model\r\n"
      "timestamp     : print m-lap-us-<microseconds>\r\n"
      "db load N     : expect N input bytes\r\n"
      "db HH[HH]*    : load input bytes as hex\r\n"
      "db print      : print the loaded bytes\r\n"
      "infer N W     : N timed inferences after W warmup runs\r\n"
      "results       : class probabilities of the last inference\r\n"
      "tkd-info      : model hash, sizes, arena use, clock\r\n"
      "tkd-ticks     : ticks per inference of the last infer\r\n"
      "tkd-output    : raw int8 outputs as hex\r\n"
      "tkd-bulk N C  : N raw input bytes with CRC-32 C (hex) follow m-tkd-bulk-ready\r\n");
  return 0;
}

static void input_invalidate(size_t expected) {
  s_expected = expected;
  s_loaded = 0;
}

static int db_load(const char *count_text) {
  uint32_t count;
  if (!parse_u32(count_text, &count)) {
    line("e-[Invalid number: %s]", count_text);
  } else if (count == 0u) {
    line("e-[Command 'db load' must be >0 bytes]");
  } else if (count > TKD_INPUT_BYTES) {
    line("e-[Command 'db load' exceeds the input size of %u bytes]", (uint64_t)TKD_INPUT_BYTES);
  } else {
    input_invalidate(count);
    line("m-[Expecting %u bytes]", (uint64_t)count);
  }
  return 0;
}

static int db_print(void) {
  size_t i;
  for (i = 0; i < s_loaded; ++i) {
    put(i % TKD_BUFFER_BYTES_PER_LINE == 0u ? "m-buffer-" : "-");
    put_hex(s_input[i], 2u);
    if ((i + 1u) % TKD_BUFFER_BYTES_PER_LINE == 0u || i + 1u == s_loaded) put("\r\n");
  }
  return 0;
}

/* Validates the whole hex string before storing a byte, so a bad command changes nothing. */
static int db_hex(const char *hex) {
  size_t digits = strlen(hex), i;
  char pair[3] = {0, 0, 0};
  if (s_expected == 0u) {
    line("e-[No input buffer: send 'db load N' first]");
    return 0;
  }
  if (digits % 2u != 0u) {
    line("e-[Insufficient number of hex digits]");
    return 0;
  }
  for (i = 0; i < digits; i += 2u) {
    if (hex_digit(hex[i]) < 0 || hex_digit(hex[i + 1u]) < 0) {
      pair[0] = hex[i];
      pair[1] = hex[i + 1u];
      line("e-[Invalid hex digit '%s']", pair);
      return 0;
    }
  }
  if (digits / 2u > s_expected - s_loaded) {
    line("e-[Too many bytes: %u given, %u expected]", (uint64_t)(digits / 2u),
         (uint64_t)(s_expected - s_loaded));
    return 0;
  }
  for (i = 0; i < digits; i += 2u) {
    s_input[s_loaded++] = (uint8_t)(hex_digit(hex[i]) * 16 + hex_digit(hex[i + 1u]));
  }
  if (s_loaded == s_expected) line("m-load-done");
  return 0;
}

static int cmd_db(char **args, size_t count) {
  if (count == 0u) {
    line("e-[Command 'db' requires a subcommand]");
  } else if (strcmp(args[0], "load") == 0) {
    if (count != 2u) {
      line("e-[Command 'db load' requires the # of bytes]");
    } else {
      return db_load(args[1]);
    }
  } else if (count != 1u) {
    line("e-[Wrong number of arguments for 'db %s']", args[0]);
  } else if (strcmp(args[0], "print") == 0) {
    return db_print();
  } else {
    return db_hex(args[0]);
  }
  return 0;
}

static int runtime_ready(void) {
  if (s_runtime_status != 0) {
    line("e-[Runtime not ready: init failed with code %u]", (uint64_t)s_runtime_status);
    return 0;
  }
  return 1;
}

/* One inference on the loaded input; *ticks = the invoke time alone. */
static int run_once(uint64_t *ticks) {
  size_t length;
  uint64_t start;
  int status;
  memcpy(tkd_runtime_input(&length), s_input, TKD_INPUT_BYTES); /* length checked at setup */
  start = clock_now();
  status = tkd_runtime_invoke();
  *ticks = clock_now() - start;
  if (status != 0) {
    s_have_output = 0;
    line("e-[Invoke failed with code %u]", (uint64_t)status);
    return 0;
  }
  s_have_output = 1;
  return 1;
}

/* value rounded half away from zero to `decimals` (at most 6) digits after the point. */
static void put_decimal(float value, unsigned decimals) {
  uint64_t unit = 1u, digit;
  float scaled, fraction;
  int64_t whole;
  unsigned i;
  for (i = 0; i < decimals; ++i) unit *= 10u;
  scaled = value * (float)unit;
  if (scaled > 9.0e15f) scaled = 9.0e15f;
  if (scaled < -9.0e15f) scaled = -9.0e15f;
  whole = (int64_t)scaled;
  fraction = scaled - (float)whole; /* exact */
  if (fraction >= 0.5f) ++whole;
  if (fraction <= -0.5f) --whole;
  if (whole < 0) {
    put("-");
    whole = -whole;
  }
  put_u64((uint64_t)whole / unit);
  put(".");
  for (digit = unit / 10u; digit != 0u; digit /= 10u) put_u64((uint64_t)whole / digit % 10u);
}

/* e^x for x <= 0 in single precision, without libm (so every board and the host compute
 * it alike): x = k*ln2 + r with |r| <= ln2/2 (Cody-Waite: ln2 split in two, so k*ln2_hi
 * is exact), e^r by its Taylor polynomial to r^7 (truncation below 6e-9 relative), then
 * times 2^k built from its exponent bits. Below -87, where 2^k would leave the normal
 * floats, the result (under 2e-38) is 0. */
static float exp_nonpositive(float x) {
  static const float kLn2Hi = 6.93145752e-1f, kLn2Lo = 1.42860677e-6f;
  float r, sum, two_to_k;
  uint32_t bits;
  int k;
  if (x < -87.0f) return 0.0f;
  k = (int)(x * 1.44269504f - 0.5f); /* round(x / ln2) for x <= 0: -126 <= k <= 0 */
  r = (x - (float)k * kLn2Hi) - (float)k * kLn2Lo;
  sum = 1.0f / 5040.0f;
  sum = 1.0f / 720.0f + r * sum;
  sum = 1.0f / 120.0f + r * sum;
  sum = 1.0f / 24.0f + r * sum;
  sum = 1.0f / 6.0f + r * sum;
  sum = 0.5f + r * sum;
  sum = 1.0f + r * sum;
  sum = 1.0f + r * sum;
  bits = (uint32_t)(k + 127) << 23;
  memcpy(&two_to_k, &bits, sizeof two_to_k);
  return sum * two_to_k;
}

/* m-results: what MLPerf Tiny's reference DUTs report, so the official runner (which
 * divides each vector by its sum and takes the argmax) scores it. Several classes: class
 * probabilities, the model's own SOFTMAX output dequantized, or else the softmax of the
 * dequantized outputs (computed from the int8 differences to the largest output, so no
 * exponent is positive); six decimals (at three, two classes closer than 0.001 would tie
 * and could change the runner's argmax). One output (a score, as anomaly detection's):
 * its dequantized value, three decimals. tkd-output keeps the exact int8 outputs. */
#ifndef TKD_OUTPUT_IS_PROBABILITIES
#define TKD_OUTPUT_IS_PROBABILITIES 0
#endif
#define TKD_PROBABILITY_DECIMALS 6u
#define TKD_SCORE_DECIMALS 3u

static float dequantize(int8_t value) {
  return (float)((int)value - (int)(TKD_OUTPUT_ZERO_POINT)) * (float)(TKD_OUTPUT_SCALE);
}

/* e^(dequantized output - dequantized largest output), from the exact int8 difference. */
static float relative_exp(int8_t value, int8_t largest) {
  return exp_nonpositive((float)((int)value - (int)largest) * (float)(TKD_OUTPUT_SCALE));
}

static void put_results(const int8_t *output, size_t length) {
  size_t i;
  int8_t largest = output[0];
  float total = 0.0f;
  for (i = 1; i < length; ++i) largest = output[i] > largest ? output[i] : largest;
  for (i = 0; i < length; ++i) total += relative_exp(output[i], largest);
  put("m-results-[");
  for (i = 0; i < length; ++i) {
    if (i != 0u) put(",");
    if (length == 1u) {
      put_decimal(dequantize(output[i]), TKD_SCORE_DECIMALS);
    } else if (TKD_OUTPUT_IS_PROBABILITIES) {
      put_decimal(dequantize(output[i]), TKD_PROBABILITY_DECIMALS);
    } else {
      put_decimal(relative_exp(output[i], largest) / total, TKD_PROBABILITY_DECIMALS);
    }
  }
  put("]\r\n");
}

/* The outputs of the last inference, or NULL (after an e- line) if there are none. */
static const int8_t *last_output(size_t *length) {
  if (!s_have_output) {
    line("e-[No results: run infer first]");
    return NULL;
  }
  return tkd_runtime_output(length);
}

static int cmd_results(char **args, size_t count) {
  size_t length;
  const int8_t *output = last_output(&length);
  (void)args, (void)count;
  if (output == NULL) return 0;
  put_results(output, length);
  return 0;
}

static int cmd_infer(char **args, size_t count) {
  uint32_t runs, warmup = TKD_DEFAULT_WARMUP, i;
  uint64_t ticks;
  if (!parse_u32(args[0], &runs) || runs == 0u) {
    line("e-[Inference iterations must be >0]");
    return 0;
  }
  if (count == 2u && !parse_u32(args[1], &warmup)) {
    line("e-[Inference warmup must be >=0]");
    return 0;
  }
  if (runs > TKD_MAX_INFER_RUNS || warmup > TKD_MAX_INFER_RUNS) {
    line("e-[Inference runs and warmup must be at most %u each]", (uint64_t)TKD_MAX_INFER_RUNS);
    return 0;
  }
  if (!runtime_ready()) return 0;
  if (s_expected != TKD_INPUT_BYTES || s_loaded != TKD_INPUT_BYTES) {
    line("e-[Input not loaded: have %u of %u bytes]", (uint64_t)s_loaded,
         (uint64_t)TKD_INPUT_BYTES);
    return 0;
  }
  line("m-warmup-start-%u", (uint64_t)warmup);
  for (i = 0; i < warmup; ++i) {
    if (!run_once(&ticks)) return 0;
  }
  line("m-warmup-done");
  line("m-infer-start-%u", (uint64_t)runs);
  s_timed_runs = 0;
  s_ticks_total = 0;
  lap();
  for (i = 0; i < runs; ++i) {
    if (!run_once(&ticks)) return 0;
    s_ticks_min = (i == 0u || ticks < s_ticks_min) ? ticks : s_ticks_min;
    s_ticks_max = (i == 0u || ticks > s_ticks_max) ? ticks : s_ticks_max;
    s_ticks_total += ticks;
    ++s_timed_runs;
  }
  lap();
  line("m-infer-done");
  return cmd_results(args, count);
}

static int cmd_tkd_info(char **args, size_t count) {
  (void)args, (void)count;
  line("m-tkd-protocol-[%s]", TKD_PROTOCOL_VERSION);
  line("m-tkd-board-[%s]", TKD_BOARD_NAME);
  line("m-tkd-model-[%s]", TKD_MODEL_NAME);
  line("m-tkd-hash-[%s]", TKD_MODEL_HASH);
  line("m-tkd-input-bytes-[%u]", (uint64_t)TKD_INPUT_BYTES);
  line("m-tkd-classes-[%u]", (uint64_t)TKD_NUM_CLASSES);
  line("m-tkd-arena-size-[%u]", (uint64_t)TKD_ARENA_SIZE);
  line("m-tkd-arena-used-[%u]", (uint64_t)(s_runtime_status == 0 ? tkd_runtime_arena_used() : 0u));
  line("m-tkd-runtime-status-[%u]", (uint64_t)s_runtime_status);
  line("m-tkd-cmd-size-[%u]", (uint64_t)TKD_CMD_SIZE);
  line("m-tkd-tick-unit-[%s]", tkd_hal_tick_unit());
  line("m-tkd-ticks-per-second-[%u]", (uint64_t)s_ticks_per_second);
  return 0;
}

static int cmd_tkd_ticks(char **args, size_t count) {
  (void)args, (void)count;
  if (s_timed_runs == 0u) {
    line("e-[No timed inference yet: run infer first]");
    return 0;
  }
  line("m-tkd-inferences-[%u]", s_timed_runs);
  line("m-tkd-ticks-total-[%u]", s_ticks_total);
  line("m-tkd-ticks-min-[%u]", s_ticks_min);
  line("m-tkd-ticks-max-[%u]", s_ticks_max);
  line("m-tkd-ticks-per-inference-[%u]", (s_ticks_total + s_timed_runs / 2u) / s_timed_runs);
  line("m-tkd-tick-unit-[%s]", tkd_hal_tick_unit());
  line("m-tkd-ticks-per-second-[%u]", (uint64_t)s_ticks_per_second);
  return 0;
}

static int cmd_tkd_output(char **args, size_t count) {
  size_t length, i;
  const int8_t *output = last_output(&length);
  (void)args, (void)count;
  if (output == NULL) return 0;
  put("m-tkd-output-[");
  for (i = 0; i < length; ++i) put_hex((uint8_t)output[i], 2u);
  put("]\r\n");
  return 0;
}

static int cmd_tkd_bulk(char **args, size_t count) {
  uint32_t bytes, crc = 0;
  size_t i, digits = strlen(args[1]);
  (void)count;
  if (!parse_u32(args[0], &bytes) || bytes == 0u || bytes > TKD_INPUT_BYTES) {
    line("e-[tkd-bulk size must be 1..%u bytes]", (uint64_t)TKD_INPUT_BYTES);
    return 0;
  }
  if (digits == 0u || digits > 8u) {
    line("e-[tkd-bulk checksum must be 1..8 hex digits]");
    return 0;
  }
  for (i = 0; i < digits; ++i) {
    if (hex_digit(args[1][i]) < 0) {
      line("e-[tkd-bulk checksum must be 1..8 hex digits]");
      return 0;
    }
    crc = (crc << 4) | (uint32_t)hex_digit(args[1][i]);
  }
  input_invalidate(bytes);
  s_bulk_remaining = bytes;
  s_bulk_crc = 0xffffffffu;
  s_bulk_expected_crc = crc;
  s_bulk_last_byte = clock_now();
  line("m-tkd-bulk-ready-[%u]", (uint64_t)bytes);
  return 1;
}

static void bulk_byte(uint8_t byte) {
  s_input[s_loaded++] = byte;
  s_bulk_crc = crc32_update(s_bulk_crc, byte);
  s_bulk_last_byte = clock_now();
  if (--s_bulk_remaining != 0u) return;
  s_bulk_crc = ~s_bulk_crc;
  if (s_bulk_crc == s_bulk_expected_crc) {
    line("m-load-done");
  } else {
    line("e-[tkd-bulk checksum mismatch: got %x, expected %x]", s_bulk_crc, s_bulk_expected_crc);
    input_invalidate(0);
  }
  line("m-ready");
}

static void bulk_check_timeout(void) {
  uint64_t limit = (uint64_t)s_ticks_per_second * TKD_BULK_TIMEOUT_MS / 1000u;
  if (clock_now() - s_bulk_last_byte <= limit) return;
  line("e-[tkd-bulk timed out after %u of %u bytes]", (uint64_t)s_loaded, (uint64_t)s_expected);
  s_bulk_remaining = 0;
  input_invalidate(0);
  line("m-ready");
}

struct command {
  const char *name;
  size_t min_args, max_args;
  handler_fn handler;
};

static const struct command kCommands[] = {
    {"name", 0, 0, cmd_name},         {"profile", 0, 0, cmd_profile},
    {"timestamp", 0, 0, cmd_timestamp}, {"help", 0, 0, cmd_help},
    {"db", 0, 2, cmd_db},             {"infer", 1, 2, cmd_infer},
    {"results", 0, 0, cmd_results},   {"tkd-info", 0, 0, cmd_tkd_info},
    {"tkd-ticks", 0, 0, cmd_tkd_ticks}, {"tkd-output", 0, 0, cmd_tkd_output},
    {"tkd-bulk", 2, 2, cmd_tkd_bulk},
};

static void dispatch(void) {
  char *tokens[TKD_MAX_TOKENS];
  size_t count, i;
  if (s_cmd_overflow) {
    line("e-[Command too long: the limit is %u characters]", (uint64_t)TKD_CMD_SIZE);
    line("m-ready");
    return;
  }
  s_cmd[s_cmd_len] = '\0';
  count = tokenize(s_cmd, tokens);
  if (count == 0u) {
    line("e-[Empty command]");
    line("m-ready");
    return;
  }
  for (i = 0; i < sizeof kCommands / sizeof kCommands[0]; ++i) {
    const struct command *command = &kCommands[i];
    if (strcmp(tokens[0], command->name) != 0) continue;
    if (count - 1u < command->min_args || count - 1u > command->max_args) {
      line("e-[Wrong number of arguments for '%s']", command->name);
    } else if (command->handler(tokens + 1, count - 1u) != 0) {
      return; /* the reply continues later */
    }
    line("m-ready");
    return;
  }
  line("e-[Unknown command: %s]", tokens[0]);
  line("m-ready");
}

static void command_byte(int byte) {
  if (byte == '%') {
    dispatch();
    s_cmd_len = 0;
    s_cmd_overflow = 0;
  } else if (byte == '\r' || byte == '\n') {
    /* line endings from serial monitors are not part of a command */
  } else if (s_cmd_len == TKD_CMD_SIZE) {
    s_cmd_overflow = 1; /* drop the rest, answer at the next '%' */
  } else {
    s_cmd[s_cmd_len++] = (byte >= 0x20 && byte < 0x7f) ? (char)byte : '?';
  }
}

/* ---- entry points ---------------------------------------------------------- */

void tkd_core_setup(void) {
  size_t input_length = 0, output_length = 0;
  s_cmd_len = 0;
  s_cmd_overflow = 0;
  input_invalidate(0);
  s_bulk_remaining = 0;
  s_have_output = 0;
  s_timed_runs = s_ticks_total = s_ticks_min = s_ticks_max = 0;

  tkd_hal_init(TKD_BAUD);
  s_ticks_per_second = tkd_hal_ticks_per_second();
  if (s_ticks_per_second == 0u) s_ticks_per_second = 1u;
  s_clock_last = tkd_hal_ticks();
  s_clock = s_clock_last;

  s_runtime_status = tkd_runtime_init();
  if (s_runtime_status == 0) {
    (void)tkd_runtime_input(&input_length);
    (void)tkd_runtime_output(&output_length);
    if (input_length != TKD_INPUT_BYTES) s_runtime_status = TKD_RUNTIME_ERR_INPUT;
    if (output_length != TKD_NUM_CLASSES) s_runtime_status = TKD_RUNTIME_ERR_OUTPUT;
  }
  line("m-timestamp-mode-performance");
  if (s_runtime_status != 0) {
    line("e-[Runtime init failed with code %u]", (uint64_t)s_runtime_status);
  }
  line("m-init-done");
  line("m-ready");
}

void tkd_core_poll(void) {
  int byte;
  /* Read the clock at every poll, not only around inferences: the 64-bit extension needs
   * one reading per wrap of the 32-bit counter (4.3 s under QEMU's instruction clock), so
   * timestamp% stays right across idle time. */
  (void)clock_now();
  while ((byte = tkd_hal_read_byte()) >= 0) {
    if (s_bulk_remaining != 0u) {
      bulk_byte((uint8_t)byte);
    } else {
      command_byte(byte);
    }
  }
  if (s_bulk_remaining != 0u) bulk_check_timeout();
}
