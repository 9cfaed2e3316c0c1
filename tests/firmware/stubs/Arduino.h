/* Minimal stand-in for the Arduino core API, only to compile the Arduino HAL on the
 * host (syntax and warnings); the real one comes with each board's core. */
#ifndef TKD_STUB_ARDUINO_H_
#define TKD_STUB_ARDUINO_H_
#include <stddef.h>
#include <stdint.h>

unsigned long micros(void);
unsigned long millis(void);

#ifdef __cplusplus
class HardwareSerial {
 public:
  void begin(unsigned long baud);
  int available(void);
  int read(void);
  size_t write(const uint8_t *data, size_t length);
  explicit operator bool() const;
};
extern HardwareSerial Serial;
#endif

#endif
