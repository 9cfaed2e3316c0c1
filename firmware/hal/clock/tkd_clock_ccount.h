/* tkd_clock_ccount.h: CPU cycles from the Xtensa CCOUNT special register (ESP32,
 * ESP32-S3). Read with one instruction, so it works on every Arduino-ESP32 and
 * ESP-IDF version alike. */
#ifndef TKD_CLOCK_CCOUNT_H_
#define TKD_CLOCK_CCOUNT_H_

#include <stdint.h>

#define TKD_CLOCK_UNIT "cycles"

static inline void tkd_clock_init(void) {}
static inline uint32_t tkd_clock_ticks(void) {
  uint32_t count;
  __asm__ __volatile__("rsr %0, ccount" : "=a"(count));
  return count;
}
static inline uint32_t tkd_clock_hz(void) { return TKD_CPU_HZ; }

#endif /* TKD_CLOCK_CCOUNT_H_ */
