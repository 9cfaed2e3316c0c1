/* tkd_hal_arduino.cpp: the HAL for every Arduino core (Mbed nRF52840/RP2040/
 * STM32H7, STM32duino, Arduino-ESP32). They share the Serial API; they differ only
 * in the tick source, chosen in tkd_clock.h. */
#include <Arduino.h>

#include "tkd_clock.h"
#include "tkd_hal.h"

extern "C" {

void tkd_hal_init(uint32_t baud) {
  Serial.begin(baud);
  while (!Serial && millis() < 3000u) {
    /* native USB ports: wait (a little) for the host to open the port */
  }
  tkd_clock_init();
}

int tkd_hal_read_byte(void) { return Serial.available() > 0 ? Serial.read() : -1; }

void tkd_hal_write(const char *data, size_t len) {
  Serial.write(reinterpret_cast<const uint8_t *>(data), len);
}

uint32_t tkd_hal_ticks(void) { return tkd_clock_ticks(); }

uint32_t tkd_hal_ticks_per_second(void) { return tkd_clock_hz(); }

const char *tkd_hal_tick_unit(void) { return TKD_CLOCK_UNIT; }

}  // extern "C"
