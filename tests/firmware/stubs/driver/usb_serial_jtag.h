/* Stand-in for ESP-IDF 5.x driver/usb_serial_jtag.h. */
#pragma once
#include <stddef.h>
#include <stdint.h>
typedef int esp_err_t;
typedef struct {
  uint32_t tx_buffer_size;
  uint32_t rx_buffer_size;
} usb_serial_jtag_driver_config_t;
esp_err_t usb_serial_jtag_driver_install(usb_serial_jtag_driver_config_t *);
int usb_serial_jtag_read_bytes(void *, uint32_t, uint32_t);
int usb_serial_jtag_write_bytes(const void *, size_t, uint32_t);
