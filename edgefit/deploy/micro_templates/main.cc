// One inference of model.tflite with TensorFlow Lite Micro, written by edgefit: quantizes a float RGB image
// (here a grey one: put your camera frame in `image`), invokes once, prints the top label and the time taken.
// Everything model-specific is in model_settings.h, model_ops.h and model_data.h.
#include <cmath>
#include <cstdint>

#include "model_data.h"
#include "model_ops.h"
#include "model_settings.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_log.h"
#include "tensorflow/lite/micro/system_setup.h"
#include "tensorflow/lite/schema/schema_generated.h"

// Your timer, in microseconds from any fixed point (a free-running hardware timer, micros() on Arduino, ...).
extern "C" uint32_t edgefit_micros(void);

namespace {
constexpr int kInputSize = kInputHeight * kInputWidth * kInputChannels;

alignas(16) uint8_t tensor_arena[kTensorArenaSize];

// The image: RGB in [0, 1], height x width x channels (HWC), already resized and center-cropped as
// model_settings.h says.
float image[kInputSize];

int8_t QuantizeInput(float value, int channel) {
  const float normalized = (value - kMean[channel]) / kStd[channel];
  const long q = std::lround(normalized / kInputScale) + kInputZeroPoint;
  return static_cast<int8_t>(q < -128 ? -128 : (q > 127 ? 127 : q));
}
}  // namespace

int main() {
  tflite::InitializeTarget();
  for (float& v : image) v = 0.5f;  // a grey image: replace with yours

  const tflite::Model* model = tflite::GetModel(g_model_data);
  if (model->version() != TFLITE_SCHEMA_VERSION) {
    MicroPrintf("model schema version %d, this TFLM reads %d", static_cast<int>(model->version()),
                TFLITE_SCHEMA_VERSION);
    return 1;
  }
  static tflite::MicroMutableOpResolver<kNumberOperators> resolver;
  if (RegisterOps(resolver) != kTfLiteOk) {
    MicroPrintf("RegisterOps failed");
    return 1;
  }
  static tflite::MicroInterpreter interpreter(model, resolver, tensor_arena, kTensorArenaSize);
  if (interpreter.AllocateTensors() != kTfLiteOk) {
    MicroPrintf("AllocateTensors failed: is kTensorArenaSize (%d bytes) too small on this target?",
                kTensorArenaSize);
    return 1;
  }

  TfLiteTensor* input = interpreter.input(0);
  for (int i = 0; i < kInputSize; ++i) input->data.int8[i] = QuantizeInput(image[i], i % kInputChannels);

  const uint32_t start = edgefit_micros();
  if (interpreter.Invoke() != kTfLiteOk) {
    MicroPrintf("Invoke failed");
    return 1;
  }
  const uint32_t elapsed_us = edgefit_micros() - start;

  const TfLiteTensor* output = interpreter.output(0);
  int best = 0;
  for (int i = 1; i < kNumClasses; ++i) {
    if (output->data.int8[i] > output->data.int8[best]) best = i;
  }
  // The real score is (q - kOutputZeroPoint) * kOutputScale; printed in thousandths (MicroPrintf may lack %f).
  const float score = (output->data.int8[best] - kOutputZeroPoint) * kOutputScale;
  MicroPrintf("top class: %s (index %d, score %d/1000)", kLabels[best], best, static_cast<int>(score * 1000));
  MicroPrintf("invoke: %d us; arena used %d of %d bytes", static_cast<int>(elapsed_us),
              static_cast<int>(interpreter.arena_used_bytes()), kTensorArenaSize);
  return 0;
}
