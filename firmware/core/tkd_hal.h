/* tkd_hal.h: the only per-platform code. Each platform (Arduino core, ESP-IDF,
 * host, QEMU) implements these six functions and nothing else; the protocol core
 * never touches hardware directly. */
#ifndef TKD_HAL_H_
#define TKD_HAL_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Open the serial link at `baud` and start the tick counter. */
void tkd_hal_init(uint32_t baud);
/* Next received byte 0..255, or -1 if none has arrived yet (never blocks). */
int tkd_hal_read_byte(void);
/* Send `len` bytes (may block until they are queued). */
void tkd_hal_write(const char *data, size_t len);
/* Free-running counter; wraps at 2^32 (the core extends it to 64 bits). */
uint32_t tkd_hal_ticks(void);
/* Rate of tkd_hal_ticks(): the CPU clock for cycle counters, 1000000 for us. */
uint32_t tkd_hal_ticks_per_second(void);
/* What one tick is: "cycles", "us" or "instructions". */
const char *tkd_hal_tick_unit(void);

#ifdef __cplusplus
}
#endif

#endif /* TKD_HAL_H_ */
