/* tkd_clock.h: picks the tick source named by the generated tkd_config.h
 * (board profile key cycle_counter: dwt, micros or ccount). */
#ifndef TKD_CLOCK_H_
#define TKD_CLOCK_H_

#include "tkd_config.h"

#if defined(TKD_CLOCK_DWT)
#include "tkd_clock_dwt.h"
#elif defined(TKD_CLOCK_MICROS)
#include "tkd_clock_micros.h"
#elif defined(TKD_CLOCK_CCOUNT)
#include "tkd_clock_ccount.h"
#else
#error "tkd_config.h must define TKD_CLOCK_DWT, TKD_CLOCK_MICROS or TKD_CLOCK_CCOUNT"
#endif

#endif /* TKD_CLOCK_H_ */
