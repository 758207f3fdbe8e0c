// libFuzzer target: the safetensors reader, and checkpoint loading on top of it (see
// fuzz/fuzz_checks.hpp).
//   scripts/fuzz safetensors 1000000
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_checks.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  mesalab::fuzz::check_safetensors_input(
      std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
