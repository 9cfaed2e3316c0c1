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
/* Interrupt numbers (NVIC) of UART0's receiver and of Timer1. */
#define MPS2_IRQ_UART0_RX 0u
#define MPS2_IRQ_TIMER1 9u
/* PCLK of the FPGA image, in Hz (QEMU: 25 MHz of virtual time). */
#define MPS2_PCLK_HZ 25000000u
/* Under qemu -icount shift=0 one instruction takes 1 ns of virtual time, so one PCLK tick
 * is exactly this many instructions. */
#define MPS2_INSTRUCTIONS_PER_TICK (1000000000u / MPS2_PCLK_HZ)

/* Writes "e-[fault: <what>]" on UART0 and stops; never returns. */
void mps2_halt(const char *what) __attribute__((noreturn));

#ifdef __cplusplus
}
#endif

#endif
