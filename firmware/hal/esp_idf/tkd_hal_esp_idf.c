/* tkd_hal_esp_idf.c: the HAL and main loop for ESP-IDF 5.x (ESP32, ESP32-S3).
 * Serial goes over UART0 (the DevKits' USB-UART bridge) or, where the board has
 * only native USB (XIAO ESP32S3), over USB-Serial-JTAG; ticks come from CCOUNT. */
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"
#include "tkd_clock.h"
#include "tkd_core.h"
#include "tkd_hal.h"

#define TKD_RX_BUFFER_BYTES 4096

#if defined(TKD_IDF_USB_SERIAL_JTAG)
#include "driver/usb_serial_jtag.h"

void tkd_hal_init(uint32_t baud) {
  usb_serial_jtag_driver_config_t config = {.tx_buffer_size = 1024,
                                            .rx_buffer_size = TKD_RX_BUFFER_BYTES};
  (void)baud; /* USB ignores the baud rate */
  usb_serial_jtag_driver_install(&config);
  tkd_clock_init();
}

int tkd_hal_read_byte(void) {
  uint8_t byte;
  return usb_serial_jtag_read_bytes(&byte, 1, 0) == 1 ? byte : -1;
}

void tkd_hal_write(const char *data, size_t len) {
  usb_serial_jtag_write_bytes(data, len, portMAX_DELAY);
}
#else
#include "driver/uart.h"

void tkd_hal_init(uint32_t baud) {
  const uart_config_t config = {
      .baud_rate = (int)baud,
      .data_bits = UART_DATA_8_BITS,
      .parity = UART_PARITY_DISABLE,
      .stop_bits = UART_STOP_BITS_1,
      .flow_ctrl = UART_HW_FLOWCTRL_DISABLE,
      .source_clk = UART_SCLK_DEFAULT,
  };
  uart_driver_install(UART_NUM_0, TKD_RX_BUFFER_BYTES, 0, 0, NULL, 0);
  uart_param_config(UART_NUM_0, &config);
  tkd_clock_init();
}

int tkd_hal_read_byte(void) {
  uint8_t byte;
  return uart_read_bytes(UART_NUM_0, &byte, 1, 0) == 1 ? byte : -1;
}

void tkd_hal_write(const char *data, size_t len) { uart_write_bytes(UART_NUM_0, data, len); }
#endif

uint32_t tkd_hal_ticks(void) { return tkd_clock_ticks(); }

uint32_t tkd_hal_ticks_per_second(void) { return tkd_clock_hz(); }

const char *tkd_hal_tick_unit(void) { return TKD_CLOCK_UNIT; }

void app_main(void) {
  tkd_core_setup();
  for (;;) {
    tkd_core_poll();
    vTaskDelay(1); /* let the idle task run (task watchdog); the driver buffers input */
  }
}
