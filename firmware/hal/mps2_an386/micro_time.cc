// TFLM's clock on mps2-an386 (linked only with TFLM): the HAL's instruction counter.
// TFLM's own cortex_m_generic/micro_time.cc reads DWT->CYCCNT, which is always 0 in QEMU;
// tinykd leaves that file out of the library and supplies this one.
#include "tensorflow/lite/micro/micro_time.h"

#include "tkd_hal.h"

namespace tflite {

uint32_t ticks_per_second() { return tkd_hal_ticks_per_second(); }

uint32_t GetCurrentTimeTicks() { return tkd_hal_ticks(); }

}  // namespace tflite
