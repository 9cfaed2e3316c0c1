/* tkd_clock_dwt.h: CPU cycles from DWT->CYCCNT (Cortex-M3/M4/M7).
 * The registers are architectural (ARMv7-M), so no vendor header is needed. */
#ifndef TKD_CLOCK_DWT_H_
#define TKD_CLOCK_DWT_H_

#include <stdint.h>

#define TKD_CLOCK_UNIT "cycles"
#define TKD_DEMCR (*(volatile uint32_t *)0xE000EDFCu)
#define TKD_DWT_CTRL (*(volatile uint32_t *)0xE0001000u)
#define TKD_DWT_CYCCNT (*(volatile uint32_t *)0xE0001004u)
#define TKD_DWT_LAR (*(volatile uint32_t *)0xE0001FB0u) /* lock access, present on M7 */

static inline void tkd_clock_init(void) {
  TKD_DEMCR |= 1u << 24; /* TRCENA: enable the DWT unit */
  TKD_DWT_LAR = 0xC5ACCE55u;
  TKD_DWT_CYCCNT = 0;
  TKD_DWT_CTRL |= 1u; /* CYCCNTENA */
}
static inline uint32_t tkd_clock_ticks(void) { return TKD_DWT_CYCCNT; }
static inline uint32_t tkd_clock_hz(void) { return TKD_CPU_HZ; }

#endif /* TKD_CLOCK_DWT_H_ */
