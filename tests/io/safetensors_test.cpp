#include "io/safetensors.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/error.hpp"

namespace mesalab {
namespace {

namespace fs = std::filesystem;

const std::string kSource = "bad.safetensors";

std::string u64_le(uint64_t v) {
  std::string out;
  for (int b = 0; b < 8; ++b) out.push_back(char((v >> (8 * b)) & 0xff));
  return out;
}

// A file with a hand-written header, for malformed inputs our writer refuses to produce.
std::string raw_file(std::string_view header, std::string_view buffer = "") {
  return u64_le(header.size()) + std::string(header) + std::string(buffer);
}

// Parses `bytes`, requiring an Error whose one-line message starts with the source name and
// contains `expected` (the statement of what is wrong).
void expect_parse_error(const std::string& bytes, const std::string& expected) {
  try {
    parse_safetensors(bytes, kSource);
    ADD_FAILURE() << "parsed without error; expected: " << expected;
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.rfind(kSource + ": ", 0), 0u) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    EXPECT_NE(message.find(expected), std::string::npos)
        << "message: " << message << "\nexpected to contain: " << expected;
  }
}

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

// A small valid file exercising several dtypes, an odd-sized tensor and metadata.
SafetensorsFile sample_file() {
  SafetensorsFile f;
  f.metadata = {{"step", "120"}, {"format", "mesalab"}};
  const std::vector<float> w = {1.5f, -2.0f, 0.0f, -0.0f, 3.25e-40f, 7.0f};
  const std::vector<double> b = {1.0 / 3.0, -1e300, std::numeric_limits<double>::infinity()};
  const std::vector<int64_t> step = {-5};
  f.add_f32("layers.0.w", {2, 3}, w.data());
  f.add_f64("layers.0.b", {3}, b.data());
  f.tensors.push_back(Tensor{"mask", DType::U8, {3}, std::string("\x01\x00\x01", 3)});
  f.add_i64("step", {}, step.data());
  return f;
}

TEST(SafetensorsTest, RoundTripKeepsTensorsMetadataAndOrder) {
  const SafetensorsFile original = sample_file();
  const std::string bytes = serialize_safetensors(original);
  const SafetensorsFile parsed = parse_safetensors(bytes, "mem");

  EXPECT_EQ(parsed.source, "mem");
  EXPECT_EQ(parsed.metadata, original.metadata);
  ASSERT_EQ(parsed.tensors.size(), original.tensors.size());
  for (size_t i = 0; i < original.tensors.size(); ++i) {
    SCOPED_TRACE(original.tensors[i].name);
    EXPECT_EQ(parsed.tensors[i].name, original.tensors[i].name);
    EXPECT_EQ(parsed.tensors[i].dtype, original.tensors[i].dtype);
    EXPECT_EQ(parsed.tensors[i].shape, original.tensors[i].shape);
    EXPECT_EQ(parsed.tensors[i].bytes, original.tensors[i].bytes);
  }
  // Bit-exact values, including -0.0, a denormal and infinity.
  EXPECT_TRUE(same_bits(parsed.get_f32("layers.0.w", {2, 3}),
                        std::vector<float>{1.5f, -2.0f, 0.0f, -0.0f, 3.25e-40f, 7.0f}));
  EXPECT_TRUE(
      same_bits(parsed.get_f64("layers.0.b", {3}),
                std::vector<double>{1.0 / 3.0, -1e300, std::numeric_limits<double>::infinity()}));
  EXPECT_EQ(parsed.get_i64("step", {}), std::vector<int64_t>{-5});
  // Serializing what was parsed reproduces the same bytes.
  EXPECT_EQ(serialize_safetensors(parsed), bytes);
}

TEST(SafetensorsTest, NanPayloadSurvivesRoundTrip) {
  SafetensorsFile f;
  const std::vector<float> v = {std::numeric_limits<float>::quiet_NaN(), -1.0f};
  f.add_f32("v", {2}, v.data());
  const auto back = parse_safetensors(serialize_safetensors(f), "mem").get_f32("v", {2});
  EXPECT_TRUE(same_bits(back, v));
}

TEST(SafetensorsTest, TinyFileIsByteExact) {
  // Hand-computed: the header {"a":{...}} is 54 bytes, padded with 2 spaces to 56 = 0x38;
  // then 1.0f = 00 00 80 3f and -2.0f = 00 00 00 c0, little-endian.
  SafetensorsFile f;
  const float values[2] = {1.0f, -2.0f};
  f.add_f32("a", {2}, values);
  const std::string bytes = serialize_safetensors(f);

  const std::string json = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  ASSERT_EQ(json.size(), 54u);
  const std::string expected = std::string("\x38\0\0\0\0\0\0\0", 8) + json + "  " +
                               std::string("\x00\x00\x80\x3f\x00\x00\x00\xc0", 8);
  EXPECT_EQ(bytes, expected);
  EXPECT_EQ(bytes.substr(0, 8), u64_le(56));
  EXPECT_EQ((bytes.size() - 8 - 8) % 8, 0u);  // header length is a multiple of 8
}

TEST(SafetensorsTest, MatchesReferenceWriterOutput) {
  // The same inputs as the reference implementation's own serialization tests
  // (huggingface/safetensors, tensor.rs: test_empty, test_serialization_forced_alignement).
  EXPECT_EQ(serialize_safetensors(SafetensorsFile{}), u64_le(8) + "{}      ");

  SafetensorsFile with_meta;
  with_meta.metadata["framework"] = "pt";
  EXPECT_EQ(serialize_safetensors(with_meta),
            u64_le(40) + R"({"__metadata__":{"framework":"pt"}})" + "     ");

  SafetensorsFile attn;
  const float values[6] = {0, 1, 2, 3, 4, 5};
  attn.add_f32("attn0", {1, 1, 2, 3}, values);
  const std::string floats("\0\0\0\0\0\0\x80\x3f\0\0\0\x40\0\0\x40\x40\0\0\x80\x40\0\0\xa0\x40",
                           24);
  EXPECT_EQ(serialize_safetensors(attn),
            u64_le(72) + R"({"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}})" +
                "       " + floats);

  for (const SafetensorsFile* f : {&with_meta, &attn})
    EXPECT_NO_THROW(parse_safetensors(serialize_safetensors(*f), "ref"));
}

TEST(SafetensorsTest, AcceptsValidVariantsFromOtherWriters) {
  // Header keys out of buffer order (older writers sorted by name): tensors come back in
  // buffer order.
  const auto reordered =
      parse_safetensors(raw_file(R"({"b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]},)"
                                 R"("a":{"dtype":"I32","shape":[],"data_offsets":[0,4]},)"
                                 R"("z":{"dtype":"F32","shape":[0,3],"data_offsets":[6,6]}})",
                                 std::string("\x07\0\0\0\x08\x09", 6)),
                        "other");
  ASSERT_EQ(reordered.tensors.size(), 3u);
  EXPECT_EQ(reordered.tensors[0].name, "a");
  EXPECT_EQ(reordered.tensors[1].name, "b");
  EXPECT_EQ(reordered.tensors[2].name, "z");
  EXPECT_EQ(reordered.tensors[1].bytes, "\x08\x09");
  EXPECT_EQ(reordered.get_f32("z", {0, 3}), std::vector<float>{});

  // A null __metadata__ means "none" to the reference reader; unpadded headers are valid.
  const auto null_meta = parse_safetensors(raw_file(R"({"__metadata__":null})"), "other");
  EXPECT_TRUE(null_meta.metadata.empty());
  EXPECT_TRUE(null_meta.tensors.empty());
}

TEST(SafetensorsTest, RejectsBadFraming) {
  expect_parse_error("", "file is 0 bytes, shorter than the 8-byte header length");
  expect_parse_error("abc", "file is 3 bytes, shorter than the 8-byte header length");
  expect_parse_error(u64_le(100) + "{}", "file is truncated: header length is 100 but only 2");
  expect_parse_error(u64_le(~uint64_t{0}) + "{}", "exceeds the 100000000-byte limit");
  expect_parse_error(u64_le(100'000'001) + "{}", "exceeds the 100000000-byte limit");
}

TEST(SafetensorsTest, RejectsHeaderThatIsNotAJsonObject) {
  expect_parse_error(raw_file(""), "header is not a JSON object");
  expect_parse_error(raw_file("[1, 2]"), "header is not a JSON object");
  expect_parse_error(raw_file(" {}"), "header is not a JSON object");
  expect_parse_error(raw_file("{not json}"), "header is not valid JSON");
  expect_parse_error(raw_file("{\"a\":"), "header is not valid JSON");
  expect_parse_error(raw_file("{} {}"), "header is not valid JSON");
  // nlohmann's lexer stops at a NUL; what follows one must not be ignored.
  expect_parse_error(raw_file(std::string("{}\0\0", 4)), "NUL byte at header offset 2");
  expect_parse_error(raw_file(std::string("{}\0{\"a\":5}", 10)), "NUL byte at header offset 2");
  expect_parse_error(raw_file("{\"\xff\":{}}"), "header is not valid JSON");  // bad UTF-8
}

TEST(SafetensorsTest, RejectsMalformedEntries) {
  const std::string u4(4, '\0');
  expect_parse_error(raw_file(R"({"a":5})"), "entry 'a' must be an object");
  expect_parse_error(raw_file(R"({"a":[]})"), "entry 'a' must be an object");
  expect_parse_error(raw_file(R"({"a":{"shape":[1],"data_offsets":[0,4]}})", u4),
                     "tensor 'a' has no 'dtype'");
  expect_parse_error(raw_file(R"({"a":{"dtype":"F32","data_offsets":[0,4]}})", u4),
                     "tensor 'a' has no 'shape'");
  expect_parse_error(raw_file(R"({"a":{"dtype":"F32","shape":[1]}})", u4),
                     "tensor 'a' has no 'data_offsets'");
  expect_parse_error(raw_file(R"({"a":{"dtype":3,"shape":[1],"data_offsets":[0,4]}})", u4),
                     "dtype of tensor 'a' must be a string, got a number");
  expect_parse_error(raw_file(R"({"a":{"dtype":"F32","shape":"1","data_offsets":[0,4]}})", u4),
                     "shape of tensor 'a' must be an array, got a string");
  expect_parse_error(raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":{}}})", u4),
                     "data_offsets of tensor 'a' must be an array, got an object");
  expect_parse_error(raw_file(R"({"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", u4),
                     "shape of tensor 'a' must hold non-negative integers");
  expect_parse_error(raw_file(R"({"a":{"dtype":"F32","shape":[[1]],"data_offsets":[0,4]}})", u4),
                     "got an array");
  expect_parse_error(raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,"4"]}})", u4),
                     "data_offsets of tensor 'a' must hold non-negative integers, got a string");
  expect_parse_error(
      raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}})", u4),
      "tensor 'a' has unknown field 'x'");
  expect_parse_error(
      raw_file(R"({"a":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}})", u4),
      "tensor 'a' has field 'dtype' twice");
}

TEST(SafetensorsTest, RejectsUnknownDtype) {
  expect_parse_error(raw_file(R"({"a":{"dtype":"F16","shape":[1],"data_offsets":[0,2]}})", "xx"),
                     "tensor 'a' has unsupported dtype 'F16'");
  expect_parse_error(raw_file(R"({"a":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}})", "xxxx"),
                     "unsupported dtype 'f32'");
}

TEST(SafetensorsTest, RejectsNegativeAndAbsurdShapes) {
  expect_parse_error(raw_file(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}})"),
                     "shape of tensor 'a' must hold non-negative integers, got a negative number");
  expect_parse_error(
      raw_file(R"({"a":{"dtype":"F32","shape":[9223372036854775808],"data_offsets":[0,0]}})"),
      "shape of tensor 'a' has absurd dimension 9223372036854775808");
  // Beyond 64 bits the JSON parser can only give a floating-point approximation.
  expect_parse_error(
      raw_file(R"({"a":{"dtype":"F32","shape":[100000000000000000000],"data_offsets":[0,0]}})"),
      "shape of tensor 'a' must hold non-negative integers");
  // 2^32 * 2^32 * 4 bytes wraps to 0 in 64-bit arithmetic; it must not match [0, 0].
  expect_parse_error(
      raw_file(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}})"),
      "is absurdly large");
  expect_parse_error(
      raw_file(R"({"a":{"dtype":"U8","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}})"),
      "is absurdly large");
}

TEST(SafetensorsTest, RejectsBadOffsets) {
  const std::string b8(8, '\0');
  expect_parse_error(raw_file(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}})", b8),
                     "data_offsets [4, 0] of tensor 'a' have begin > end");
  expect_parse_error(raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", b8),
                     "data_offsets of tensor 'a' must be [begin, end], got 1 numbers");
  expect_parse_error(raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}})", b8),
                     "data_offsets of tensor 'a' must be [begin, end], got more than 2");
  expect_parse_error(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", "xxxx"),
                     "tensor 'a' has data_offsets [0, 4] (4 bytes) but dtype F32 and shape [2] "
                     "need 8 bytes");
  expect_parse_error(raw_file(R"({"a":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}})", "xxxx"),
                     "file is truncated: tensor 'a' needs data bytes [0, 8) but the data buffer "
                     "has 4");
  expect_parse_error(
      raw_file(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[18446744073709551614,)"
               R"(18446744073709551615]}})"),
      "file is truncated: tensor 'a'");
}

TEST(SafetensorsTest, RejectsOverlapsGapsAndTrailingBytes) {
  expect_parse_error(raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                              R"("b":{"dtype":"F32","shape":[2],"data_offsets":[2,10]}})",
                              std::string(10, 'x')),
                     "tensors 'a' and 'b' overlap in the data buffer");
  // Two tensors claiming the same bytes.
  expect_parse_error(raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                              R"("b":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}})",
                              std::string(4, 'x')),
                     "overlap in the data buffer");
  expect_parse_error(raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                              R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                              std::string(12, 'x')),
                     "data buffer bytes [4, 8) are not covered by any tensor");
  expect_parse_error(
      raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", std::string(6, 'x')),
      "2 trailing bytes after the last tensor are not covered by any tensor");
  expect_parse_error(raw_file("{}", "xyz"), "3 trailing bytes");
}

TEST(SafetensorsTest, RejectsDuplicatesAndBadMetadata) {
  const std::string a = R"("a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]})";
  expect_parse_error(raw_file("{" + a + "," + a + "}", "x"), "header lists 'a' twice");
  expect_parse_error(raw_file(R"({"__metadata__":{},"__metadata__":{}})"),
                     "header lists '__metadata__' twice");
  expect_parse_error(raw_file(R"({"__metadata__":{"k":"v","k":"w"}})"),
                     "__metadata__ has key 'k' twice");
  expect_parse_error(raw_file(R"({"__metadata__":{"k":1}})"),
                     "__metadata__ value of key 'k' must be a string, got a number");
  expect_parse_error(raw_file(R"({"__metadata__":{"k":{"x":"y"}}})"),
                     "__metadata__ value of key 'k' must be a string, got an object");
  expect_parse_error(raw_file(R"({"__metadata__":"v"})"),
                     "__metadata__ must be an object, got a string");
}

TEST(SafetensorsTest, HostileHeadersFailFastOnOneLine) {
  // Deep nesting is refused at the first unexpected bracket, not parsed recursively.
  expect_parse_error(raw_file("{\"a\":" + std::string(1'000'000, '[')),
                     "entry 'a' must be an object");
  expect_parse_error(raw_file("{\"__metadata__\":{\"k\":" + std::string(1'000'000, '{')),
                     "must be a string, got an object");
  // Control characters in names are escaped so the message stays one line; long names are cut.
  expect_parse_error(raw_file(R"({"a\nb":5})"), "entry 'a\\x0ab' must be an object");
  expect_parse_error(raw_file("{\"" + std::string(10'000, 'n') + "\":5}"), "nnn...'");
}

TEST(SafetensorsTest, TruncationAtEveryByteIsAnError) {
  const std::string bytes = serialize_safetensors(sample_file());
  for (size_t n = 0; n < bytes.size(); ++n) {
    SCOPED_TRACE(n);
    try {
      parse_safetensors(std::string_view(bytes).substr(0, n), kSource);
      ADD_FAILURE() << "a file truncated to " << n << " bytes parsed";
    } catch (const Error& e) {
      const std::string message = e.what();
      EXPECT_EQ(message.rfind(kSource + ": ", 0), 0u) << message;
      EXPECT_TRUE(message.find("truncated") != std::string::npos ||
                  message.find("shorter than") != std::string::npos)
          << message;
    }
  }
}

TEST(SafetensorsTest, RandomCorruptionNeverEscapesAsAnythingButError) {
  const std::string valid = serialize_safetensors(sample_file());
  uint64_t header_size = 0;
  std::memcpy(&header_size, valid.data(), 8);  // little-endian, like the test hosts
  const size_t header_end = 8 + size_t(header_size);
  std::mt19937 rng(12345);
  // JSON punctuation, digits, dtype letters and bytes that are never valid in a header.
  std::string alphabet = "{}[]\",:0123456789-.eE \\u_abdFIU";
  alphabet += '\xff';
  alphabet += '\0';
  int errors = 0;
  for (int trial = 0; trial < 4000; ++trial) {
    std::string bytes = valid;
    const int edits = 1 + int(rng() % 3);
    for (int k = 0; k < edits; ++k) {
      // Mostly corrupt the header, where the parsing logic lives.
      const size_t limit = (rng() % 4 == 0) ? bytes.size() : std::min(header_end, bytes.size());
      const size_t pos = rng() % limit;
      switch (rng() % 3) {
        case 0:
          bytes[pos] = alphabet[rng() % alphabet.size()];
          break;
        case 1:
          bytes.erase(pos, 1);
          break;
        default:
          bytes.insert(pos, 1, alphabet[rng() % alphabet.size()]);
          break;
      }
    }
    try {
      const SafetensorsFile f = parse_safetensors(bytes, kSource);
      // Whatever parses must be self-consistent.
      for (const Tensor& t : f.tensors) {
        uint64_t n = dtype_size(t.dtype);
        for (int64_t d : t.shape) n *= uint64_t(d);
        EXPECT_EQ(n, t.bytes.size()) << t.name;
      }
    } catch (const Error& e) {
      ++errors;
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "non-Error exception: " << e.what();
    }
  }
  EXPECT_GT(errors, 1000);  // the corruptions really were mostly invalid
}

TEST(SafetensorsTest, GetNamesTensorAndFileOnMismatch) {
  const SafetensorsFile f = parse_safetensors(serialize_safetensors(sample_file()), "ckpt.st");
  auto message_of = [](auto&& call) {
    try {
      call();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(message_of([&] { f.get_f32("nope", {1}); }), "ckpt.st: tensor 'nope' not found");
  EXPECT_EQ(message_of([&] {
              f.get_f64("layers.0.w", {2, 3});
            }),
            "ckpt.st: tensor 'layers.0.w' has dtype F32, expected F64");
  EXPECT_EQ(message_of([&] {
              f.get_f32("layers.0.w", {3, 2});
            }),
            "ckpt.st: tensor 'layers.0.w' has shape [2, 3], expected [3, 2]");
  EXPECT_EQ(message_of([&] { f.get_f32("layers.0.w", {6}); }),
            "ckpt.st: tensor 'layers.0.w' has shape [2, 3], expected [6]");

  // Built in memory: no file to name.
  SafetensorsFile mem;
  const double x = 1;
  mem.add_f64("x", {1}, &x);
  EXPECT_EQ(message_of([&] { mem.get_f64("x", {}); }), "tensor 'x' has shape [1], expected []");
  mem.tensors.push_back(Tensor{"broken", DType::F64, {2}, "abc"});
  EXPECT_EQ(message_of([&] { mem.get_f64("broken", {2}); }),
            "tensor 'broken' holds 3 bytes, which does not match its shape [2]");
}

TEST(SafetensorsTest, AddAndSerializeRejectInvalidTensors) {
  SafetensorsFile f;
  const float v[2] = {1, 2};
  f.add_f32("w", {2}, v);
  EXPECT_THROW(f.add_f32("w", {2}, v), Error);
  EXPECT_THROW(f.add_f32("neg", {-1}, v), Error);
  EXPECT_THROW(f.add_f32("huge", {int64_t{1} << 62, 8}, v), Error);
  f.add_f32("empty", {0}, nullptr);

  auto serialize_error = [](const SafetensorsFile& file) {
    try {
      serialize_safetensors(file);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  SafetensorsFile wrong_size = f;
  wrong_size.tensors.push_back(Tensor{"short", DType::F32, {3}, "12345678"});
  EXPECT_NE(serialize_error(wrong_size).find("tensor 'short' holds 8 bytes"), std::string::npos)
      << serialize_error(wrong_size);
  SafetensorsFile reserved = f;
  reserved.tensors.push_back(Tensor{"__metadata__", DType::U8, {0}, ""});
  EXPECT_NE(serialize_error(reserved).find("__metadata__"), std::string::npos);
  SafetensorsFile duplicate = f;
  duplicate.tensors.push_back(duplicate.tensors[0]);
  EXPECT_NE(serialize_error(duplicate).find("tensor 'w' appears twice"), std::string::npos);
  SafetensorsFile bad_utf8 = f;
  bad_utf8.metadata["note"] = "\xff";
  EXPECT_NE(serialize_error(bad_utf8).find("not valid UTF-8"), std::string::npos);
}

class SafetensorsFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "mesalab_st_XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(SafetensorsFileTest, SaveThenLoad) {
  const fs::path path = dir_ / "step_10.safetensors";
  save_safetensors(path, sample_file());
  const SafetensorsFile loaded = load_safetensors(path);
  EXPECT_EQ(loaded.source, path.string());
  EXPECT_EQ(serialize_safetensors(loaded), serialize_safetensors(sample_file()));
}

TEST_F(SafetensorsFileTest, LoadErrorsNameTheFile) {
  const fs::path missing = dir_ / "missing.safetensors";
  try {
    load_safetensors(missing);
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("cannot read " + missing.string(), 0), 0u) << e.what();
  }
  const fs::path garbage = dir_ / "garbage.safetensors";
  std::ofstream(garbage) << "not a checkpoint";
  try {
    load_safetensors(garbage);
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind(garbage.string() + ": ", 0), 0u) << e.what();
  }
}

// The acceptance criterion is that Python's `safetensors` reads our files. That package is
// usually not installed here (and must not be installed by tests), so this runs only where
// it already is.
TEST_F(SafetensorsFileTest, PythonSafetensorsReadsOurFile) {
  if (std::system("python3 -c 'import safetensors' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "python3 with the safetensors package is not available";
  const fs::path file = dir_ / "py.safetensors";
  save_safetensors(file, sample_file());
  const fs::path script = dir_ / "check.py";
  std::ofstream(script) << R"(import struct, sys
from safetensors import deserialize, safe_open
data = open(sys.argv[1], "rb").read()
got = {name: t for name, t in deserialize(data)}
assert list(got["layers.0.w"]["shape"]) == [2, 3], got["layers.0.w"]
assert str(got["layers.0.w"]["dtype"]).upper() in ("F32", "FLOAT32"), got["layers.0.w"]
assert bytes(got["layers.0.w"]["data"]) == struct.pack("<6f", 1.5, -2.0, 0.0, -0.0, 3.25e-40, 7.0)
assert bytes(got["mask"]["data"]) == b"\x01\x00\x01"
assert list(got["step"]["shape"]) == []
with safe_open(sys.argv[1], framework="numpy") as f:
    assert f.metadata() == {"step": "120", "format": "mesalab"}, f.metadata()
)";
  const std::string command = "python3 '" + script.string() + "' '" + file.string() + "'";
  EXPECT_EQ(std::system(command.c_str()), 0) << command;
}

}  // namespace
}  // namespace mesalab
