/* tkd_runtime.h: the inference seam between the protocol core and an engine.
 * firmware/runtime/tflm/ implements it with TFLM; the host library forwards it
 * to Python (the TFLM Python interpreter). */
#ifndef TKD_RUNTIME_H_
#define TKD_RUNTIME_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Load the model and allocate its tensors. 0 = ok; otherwise one of: */
#define TKD_RUNTIME_ERR_SCHEMA 1 /* model schema version differs from the engine */
#define TKD_RUNTIME_ERR_OPS 2    /* op resolver registration failed */
#define TKD_RUNTIME_ERR_ARENA 3  /* AllocateTensors failed (arena too small?) */
#define TKD_RUNTIME_ERR_INPUT 4  /* input tensor type or size differs from model_settings.h */
#define TKD_RUNTIME_ERR_OUTPUT 5 /* output tensor is not int8 of TKD_NUM_CLASSES */
int tkd_runtime_init(void);
/* The model's input tensor as raw bytes (int8 or uint8); *len = its size. */
uint8_t *tkd_runtime_input(size_t *len);
/* Run one inference on the current input. 0 = ok. */
int tkd_runtime_invoke(void);
/* The int8 output tensor of the last inference; *len = its element count. */
const int8_t *tkd_runtime_output(size_t *len);
/* Bytes of the tensor arena actually used after init. */
size_t tkd_runtime_arena_used(void);

#ifdef __cplusplus
}
#endif

#endif /* TKD_RUNTIME_H_ */
