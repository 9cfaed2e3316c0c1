/* Reset and vector table for QEMU's mps2-an386 (Cortex-M4F), written for tinykd.
 *
 * Reset: enable the FPU (the whole image is built with -mfloat-abi=hard), copy .data from
 * code memory, zero .bss, run C++ static constructors (TFLM has some), then main().
 * No interrupt is used: the UART and the timer are polled, so only the system exceptions
 * have handlers, and a fault reports itself on the serial line before the core halts.
 */
#include <stdint.h>

#include "mps2_an386.h"

extern uint32_t __data_start__, __data_end__, __data_load__;
extern uint32_t __bss_start__, __bss_end__;
extern uint32_t __stack_top__;
extern void (*__preinit_array_start[])(void);
extern void (*__preinit_array_end[])(void);
extern void (*__init_array_start[])(void);
extern void (*__init_array_end[])(void);

int main(void);
void Reset_Handler(void);

#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)

static void run_constructors(void) {
  for (void (**ctor)(void) = __preinit_array_start; ctor < __preinit_array_end; ++ctor) (*ctor)();
  for (void (**ctor)(void) = __init_array_start; ctor < __init_array_end; ++ctor) (*ctor)();
}

void Reset_Handler(void) {
  SCB_CPACR |= 0xFu << 20; /* CP10 and CP11: full access to the FPU */
  __asm volatile("dsb\n\tisb" ::: "memory");
  for (uint32_t *src = &__data_load__, *dst = &__data_start__; dst < &__data_end__;) {
    *dst++ = *src++;
  }
  for (uint32_t *dst = &__bss_start__; dst < &__bss_end__;) {
    *dst++ = 0;
  }
  run_constructors();
  main();
  for (;;) {
  }
}

static void NMI_Handler(void) { mps2_halt("NMI"); }
static void HardFault_Handler(void) { mps2_halt("HardFault"); }
static void MemManage_Handler(void) { mps2_halt("MemManage"); }
static void BusFault_Handler(void) { mps2_halt("BusFault"); }
static void UsageFault_Handler(void) { mps2_halt("UsageFault"); }
static void Unexpected_Handler(void) { mps2_halt("unexpected exception"); }

typedef void (*vector_t)(void);

__attribute__((section(".isr_vector"), used)) static const vector_t vector_table[16] = {
    (vector_t)(uintptr_t)&__stack_top__, /* initial stack pointer */
    Reset_Handler,
    NMI_Handler,
    HardFault_Handler,
    MemManage_Handler,
    BusFault_Handler,
    UsageFault_Handler,
    0, 0, 0, 0,         /* reserved */
    Unexpected_Handler, /* SVCall */
    Unexpected_Handler, /* DebugMonitor */
    0,                  /* reserved */
    Unexpected_Handler, /* PendSV */
    Unexpected_Handler, /* SysTick */
};
