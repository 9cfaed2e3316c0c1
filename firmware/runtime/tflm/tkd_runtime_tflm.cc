/* tkd_runtime_tflm.cc: the inference seam implemented with TFLM.
 * A MicroInterpreter over the generated model array, the generated op resolver
 * (only the model's operators) and a static arena of TKD_ARENA_SIZE bytes. */
#include <new>

#include "model_data.h"
#include "op_resolver.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/schema/schema_generated.h"
#include "tkd_config.h"
#include "tkd_runtime.h"

namespace {

alignas(16) uint8_t g_arena[TKD_ARENA_SIZE];
TkdOpResolver g_resolver;
alignas(tflite::MicroInterpreter) uint8_t g_interpreter_storage[sizeof(tflite::MicroInterpreter)];
tflite::MicroInterpreter *g_interpreter = nullptr;

}  // namespace

extern "C" {

int tkd_runtime_init(void) {
  if (g_interpreter != nullptr) return 0;
  const tflite::Model *model = tflite::GetModel(g_model_data);
  if (model->version() != TFLITE_SCHEMA_VERSION) return TKD_RUNTIME_ERR_SCHEMA;
  if (TkdRegisterOps(g_resolver) != kTfLiteOk) return TKD_RUNTIME_ERR_OPS;
  /* placement new: no heap, no static-initialisation-order or guard-variable questions */
  tflite::MicroInterpreter *interpreter =
      new (g_interpreter_storage) tflite::MicroInterpreter(model, g_resolver, g_arena, TKD_ARENA_SIZE);
  if (interpreter->AllocateTensors() != kTfLiteOk) return TKD_RUNTIME_ERR_ARENA;
  const TfLiteTensor *input = interpreter->input(0);
  const TfLiteTensor *output = interpreter->output(0);
  if (input == nullptr || (input->type != kTfLiteInt8 && input->type != kTfLiteUInt8) ||
      input->bytes != TKD_INPUT_BYTES) {
    return TKD_RUNTIME_ERR_INPUT;
  }
  if (output == nullptr || output->type != kTfLiteInt8 || output->bytes != TKD_NUM_CLASSES) {
    return TKD_RUNTIME_ERR_OUTPUT;
  }
  g_interpreter = interpreter;
  return 0;
}

uint8_t *tkd_runtime_input(size_t *len) {
  TfLiteTensor *input = g_interpreter->input(0);
  *len = input->bytes;
  return input->data.uint8;
}

int tkd_runtime_invoke(void) { return g_interpreter->Invoke() == kTfLiteOk ? 0 : 1; }

const int8_t *tkd_runtime_output(size_t *len) {
  const TfLiteTensor *output = g_interpreter->output(0);
  *len = output->bytes;
  return output->data.int8;
}

size_t tkd_runtime_arena_used(void) { return g_interpreter->arena_used_bytes(); }

}  // extern "C"
