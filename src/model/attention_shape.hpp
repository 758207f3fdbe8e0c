#pragma once
// Shape shared by all sequence mixers (linear, softmax, mesa attention).
// q, k, v: (B, T, H*K) row-major, head h in columns [h*K, (h+1)*K) ("head-major").
#include <cstddef>

namespace mesalab {

struct AttentionShape {
  int batch = 0;
  int seq_len = 0;
  int heads = 0;
  int key_size = 0;
  int width() const { return heads * key_size; }
  size_t tokens() const { return size_t(batch) * size_t(seq_len); }
};

}  // namespace mesalab
