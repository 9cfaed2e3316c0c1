/* Stand-in for FreeRTOS.h as ESP-IDF ships it. */
#pragma once
#include <stdint.h>
#define portMAX_DELAY 0xffffffffu
