/* Stand-in for ESP-IDF 5.x driver/uart.h: just what the ESP-IDF HAL uses. */
#pragma once
#include <stddef.h>
#include <stdint.h>
typedef int esp_err_t;
typedef int QueueHandle_t;
typedef enum { UART_NUM_0 } uart_port_t;
typedef enum { UART_DATA_8_BITS } uart_word_length_t;
typedef enum { UART_PARITY_DISABLE } uart_parity_t;
typedef enum { UART_STOP_BITS_1 } uart_stop_bits_t;
typedef enum { UART_HW_FLOWCTRL_DISABLE } uart_hw_flowcontrol_t;
typedef enum { UART_SCLK_DEFAULT } uart_sclk_t;
typedef struct {
  int baud_rate;
  uart_word_length_t data_bits;
  uart_parity_t parity;
  uart_stop_bits_t stop_bits;
  uart_hw_flowcontrol_t flow_ctrl;
  uint8_t rx_flow_ctrl_thresh;
  uart_sclk_t source_clk;
} uart_config_t;
esp_err_t uart_driver_install(uart_port_t, int, int, int, QueueHandle_t *, int);
esp_err_t uart_param_config(uart_port_t, const uart_config_t *);
int uart_read_bytes(uart_port_t, void *, uint32_t, uint32_t);
int uart_write_bytes(uart_port_t, const void *, size_t);
