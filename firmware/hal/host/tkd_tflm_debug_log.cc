/* tkd_tflm_debug_log.cc: TFLM's DebugLog for a host process. Messages go to
 * stderr so that stdout carries only the serial protocol. */
#include <cstdio>

#include "tensorflow/lite/micro/debug_log.h"

extern "C" void DebugLog(const char *format, va_list args) { vfprintf(stderr, format, args); }

extern "C" int DebugVsnprintf(char *buffer, size_t buf_size, const char *format, va_list vlist) {
  return vsnprintf(buffer, buf_size, format, vlist);
}
