/* The benchmark firmware's main loop on mps2-an386: the core polls the UART forever. */
#include "tkd_core.h"

int main(void) {
  tkd_core_setup();
  for (;;) tkd_core_poll();
}
