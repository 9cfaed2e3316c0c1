/* tkd_clock_micros.h: Arduino's microsecond timer, for CPUs without a cycle
 * counter (Cortex-M0+ on RP2040). Resolution 1 us. */
#ifndef TKD_CLOCK_MICROS_H_
#define TKD_CLOCK_MICROS_H_

#include <Arduino.h>
#include <stdint.h>

#define TKD_CLOCK_UNIT "us"

static inline void tkd_clock_init(void) {}
static inline uint32_t tkd_clock_ticks(void) { return (uint32_t)micros(); }
static inline uint32_t tkd_clock_hz(void) { return 1000000u; }

#endif /* TKD_CLOCK_MICROS_H_ */
