/* A protocol test runtime for QEMU's mps2-an386 whose every inference lasts 100 ms of
 * virtual time, spent asleep: WFI until Timer1 expires (interrupts stay masked, as in the
 * HAL, so the pending Timer1 interrupt only wakes WFI). While the guest sleeps, QEMU's
 * virtual clock follows the host's, so an MLPerf Tiny performance window of 10 s costs
 * 10 s of host time and almost no CPU, and still spans two wraps of the 32-bit
 * instruction clock. The outputs are tests/qemu/fixture_runtime.c's. */
#include "mps2_an386.h"
#include "tkd_runtime.h"

#define tkd_runtime_invoke fixture_runtime_invoke
int fixture_runtime_invoke(void);
#include "../qemu/fixture_runtime.c"
#undef tkd_runtime_invoke

typedef struct {
  volatile uint32_t ctrl;
  volatile uint32_t value;
  volatile uint32_t reload;
  volatile uint32_t intstatus;
} timer_t_;

#define TIMER1 ((timer_t_ *)MPS2_TIMER1_BASE)
#define NVIC_ICPR0 (*(volatile uint32_t *)0xE000E280u)
#define INFERENCE_TICKS (MPS2_PCLK_HZ / 10u) /* 100 ms */

int tkd_runtime_invoke(void) {
  int status = fixture_runtime_invoke();
  TIMER1->ctrl = 0;
  TIMER1->reload = INFERENCE_TICKS;
  TIMER1->value = INFERENCE_TICKS;
  TIMER1->ctrl = 0x1u | 0x8u; /* enable, interrupt */
  while (!(TIMER1->intstatus & 1u)) __asm volatile("wfi" ::: "memory");
  TIMER1->ctrl = 0;
  TIMER1->intstatus = 1u; /* write 1 to clear */
  NVIC_ICPR0 = 1u << MPS2_IRQ_TIMER1;
  return status;
}
