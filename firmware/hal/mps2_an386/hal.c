/* tinykd HAL for QEMU's mps2-an386: UART0 carries the serial protocol, Timer0 is the clock.
 *
 * Idle: when no byte waits, tkd_hal_read_byte() sleeps (WFI) until a byte arrives or at
 * most 10 ms (Timer1). Busy polling would cost QEMU a host core, and under -icount every
 * UART poll is a slow I/O exit, so virtual time would crawl (about 30 ms per real second),
 * stretching the core's 1 s timeouts to half a minute. Asleep, virtual time follows real
 * time. Interrupts stay masked (PRIMASK): a pending UART or Timer1 interrupt only wakes WFI,
 * no handler ever runs, and nothing interrupts an inference being counted.
 *
 * The clock counts instructions, not cycles: QEMU emulates no cycle counter (DWT->CYCCNT
 * reads 0), but under -icount shift=3 every instruction takes 8 ns of virtual time and
 * Timer0 counts PCLK (25 MHz of virtual time), so one timer tick is exactly 5
 * instructions. The 32-bit tick value therefore wraps every 2^32 instructions (34 s of
 * virtual time); differences of two readings are right across a wrap.
 *
 * The pacer: QEMU's align=on holds the guest back to real time only between blocks of
 * execution, and a block runs up to the next timer deadline, or 2.1 s of virtual time when
 * none is near. With blocks that long, QEMU 7.2 kept sleeping 1.5 s after each few
 * milliseconds of guest code (an infer of 3.6 s of virtual time had not ended after 100 s
 * on the host). The dual timer's first timer runs periodically every 1 ms with its
 * interrupt off: it only gives QEMU a deadline each millisecond, so blocks stay short and
 * the guest follows real time (3.62 s of virtual time in 3.60-3.63 s). It never
 * interrupts the guest, so instruction counts do not change.
 */
#include "tkd_hal.h"

#include "mps2_an386.h"

typedef struct {
  volatile uint32_t data;
  volatile uint32_t state;
  volatile uint32_t ctrl;
  volatile uint32_t intstatus;
  volatile uint32_t bauddiv;
} cmsdk_uart_t;

typedef struct {
  volatile uint32_t ctrl;
  volatile uint32_t value;
  volatile uint32_t reload;
  volatile uint32_t intstatus;
} cmsdk_timer_t;

typedef struct {
  volatile uint32_t load;
  volatile uint32_t value;
  volatile uint32_t ctrl;
} cmsdk_dualtimer_t;

#define UART0 ((cmsdk_uart_t *)MPS2_UART0_BASE)
#define TIMER0 ((cmsdk_timer_t *)MPS2_TIMER0_BASE)
#define TIMER1 ((cmsdk_timer_t *)MPS2_TIMER1_BASE)
#define PACER ((cmsdk_dualtimer_t *)MPS2_DUALTIMER_BASE)
#define NVIC_ISER0 (*(volatile uint32_t *)0xE000E100u)
#define NVIC_ICPR0 (*(volatile uint32_t *)0xE000E280u)
#define WAKE_IRQS ((1u << MPS2_IRQ_UART0_RX) | (1u << MPS2_IRQ_TIMER1))

#define UART_STATE_TX_FULL 0x1u
#define UART_STATE_RX_FULL 0x2u
#define UART_CTRL_TX_ENABLE 0x1u
#define UART_CTRL_RX_ENABLE 0x2u
#define UART_CTRL_RX_IRQ 0x8u
#define UART_INT_RX 0x2u
#define UART_MIN_BAUDDIV 16u /* the smallest divider the CMSDK UART accepts */
#define TIMER_CTRL_ENABLE 0x1u
#define TIMER_CTRL_IRQ 0x8u
#define IDLE_WAKE_TICKS (MPS2_PCLK_HZ / 100u) /* 10 ms */
#define PACER_TICKS (MPS2_PCLK_HZ / 1000u)    /* 1 ms */
#define DUALTIMER_CTRL_ENABLE 0x80u
#define DUALTIMER_CTRL_PERIODIC 0x40u
#define DUALTIMER_CTRL_32BIT 0x02u

void tkd_hal_init(uint32_t baud) {
  uint32_t divider = baud ? MPS2_PCLK_HZ / baud : UART_MIN_BAUDDIV;
  UART0->bauddiv = divider < UART_MIN_BAUDDIV ? UART_MIN_BAUDDIV : divider;
  UART0->ctrl = UART_CTRL_TX_ENABLE | UART_CTRL_RX_ENABLE;
  /* Reading DATA tells QEMU the receiver can take input again. Without it, bytes that the
   * host sends first wait for QEMU's next main loop pass (up to 1 s): QEMU stopped polling
   * the socket while the receiver was still disabled at power-on. */
  (void)UART0->data;

  TIMER0->ctrl = 0;
  TIMER0->reload = 0xFFFFFFFFu;
  TIMER0->value = 0xFFFFFFFFu;
  TIMER0->ctrl = TIMER_CTRL_ENABLE;

  PACER->ctrl = 0;
  PACER->load = PACER_TICKS;
  PACER->ctrl = DUALTIMER_CTRL_ENABLE | DUALTIMER_CTRL_PERIODIC | DUALTIMER_CTRL_32BIT;

  __asm volatile("cpsid i" ::: "memory"); /* interrupts only wake WFI (see above) */
  NVIC_ISER0 = WAKE_IRQS;
}

/* Sleeps until a byte is received or Timer1 expires (10 ms). */
static void idle(void) {
  UART0->ctrl |= UART_CTRL_RX_IRQ;
  TIMER1->ctrl = 0;
  TIMER1->reload = IDLE_WAKE_TICKS;
  TIMER1->value = IDLE_WAKE_TICKS;
  TIMER1->ctrl = TIMER_CTRL_ENABLE | TIMER_CTRL_IRQ;
  /* A byte that came before RX interrupts were on is seen here; one after wakes WFI. */
  if (!(UART0->state & UART_STATE_RX_FULL)) __asm volatile("wfi" ::: "memory");
  TIMER1->ctrl = 0;
  TIMER1->intstatus = 1u; /* write 1 to clear */
  UART0->ctrl &= ~UART_CTRL_RX_IRQ;
  UART0->intstatus = UART_INT_RX;
  NVIC_ICPR0 = WAKE_IRQS;
}

int tkd_hal_read_byte(void) {
  if (!(UART0->state & UART_STATE_RX_FULL)) idle();
  if (UART0->state & UART_STATE_RX_FULL) return (int)(UART0->data & 0xFFu);
  return -1;
}

void tkd_hal_write(const char *data, size_t len) {
  for (size_t i = 0; i < len; ++i) {
    while (UART0->state & UART_STATE_TX_FULL) {
    }
    UART0->data = (uint8_t)data[i];
  }
}

uint32_t tkd_hal_ticks(void) {
  return (0xFFFFFFFFu - TIMER0->value) * MPS2_INSTRUCTIONS_PER_TICK;
}

uint32_t tkd_hal_ticks_per_second(void) { return MPS2_INSTRUCTIONS_PER_SECOND; }

const char *tkd_hal_tick_unit(void) { return "instructions"; }

void mps2_halt(const char *what) {
  static const char prefix[] = "e-[fault: ";
  static const char suffix[] = "]\r\n";
  size_t len = 0;
  while (what[len]) ++len;
  tkd_hal_write(prefix, sizeof prefix - 1);
  tkd_hal_write(what, len);
  tkd_hal_write(suffix, sizeof suffix - 1);
  for (;;) {
  }
}
