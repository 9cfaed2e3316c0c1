/* Registers of QEMU's mps2-an386 that tinykd's HAL uses (ARM CMSDK APB UART and timer). */
#ifndef TINYKD_MPS2_AN386_H
#define TINYKD_MPS2_AN386_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* CMSDK APB UART0. STATE bit 0: transmit buffer full, bit 1: a received byte waits. */
#define MPS2_UART0_BASE 0x40004000u
/* CMSDK APB Timer0 and Timer1: 32-bit down counters clocked by PCLK. */
#define MPS2_TIMER0_BASE 0x40000000u
#define MPS2_TIMER1_BASE 0x40001000u
/* CMSDK APB dual timer: its first timer paces QEMU (see hal.c). */
#define MPS2_DUALTIMER_BASE 0x40002000u
/* Interrupt numbers (NVIC) of UART0's receiver and of Timer1. */
#define MPS2_IRQ_UART0_RX 0u
#define MPS2_IRQ_TIMER1 9u
/* PCLK of the FPGA image, in Hz (QEMU: 25 MHz of virtual time). */
#define MPS2_PCLK_HZ 25000000u
/* QEMU runs this board with -icount shift=3 (tinykd.firmware.qemu.ICOUNT_SHIFT): one
 * instruction takes 2^3 = 8 ns of virtual time, a core retiring one instruction per cycle
 * at 125 MHz (MLPerf Tiny's reference board runs at 120 MHz). One PCLK tick (40 ns) is
 * therefore exactly this many instructions. */
#define MPS2_ICOUNT_SHIFT 3u
#define MPS2_INSTRUCTIONS_PER_SECOND (1000000000u >> MPS2_ICOUNT_SHIFT)
#define MPS2_INSTRUCTIONS_PER_TICK (MPS2_INSTRUCTIONS_PER_SECOND / MPS2_PCLK_HZ)

/* Writes "e-[fault: <what>]" on UART0 and stops; never returns. */
void mps2_halt(const char *what) __attribute__((noreturn));

#ifdef __cplusplus
}
#endif

#endif
