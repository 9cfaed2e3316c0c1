/* tkd_core.h: the board-neutral benchmark firmware. A platform's main calls
 * tkd_core_setup() once and tkd_core_poll() forever. The core speaks the MLPerf
 * Tiny device-under-test protocol plus tinykd's tkd- commands (firmware/README.md). */
#ifndef TKD_CORE_H_
#define TKD_CORE_H_

#ifdef __cplusplus
extern "C" {
#endif

/* Initialise HAL and runtime; prints m-timestamp-mode-performance, m-init-done, m-ready. */
void tkd_core_setup(void);
/* Consume the bytes received so far and act on every complete command. */
void tkd_core_poll(void);

#ifdef __cplusplus
}
#endif

#endif /* TKD_CORE_H_ */
