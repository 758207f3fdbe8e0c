#include "io/safetensors.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <type_traits>

#include "core/error.hpp"
#include "io/atomic_file.hpp"

namespace mesalab {
namespace {

// The reference reader (safetensors' Rust core) rejects larger headers, so we neither
// write nor accept them; it also bounds what a hostile header can make us allocate.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

// Names and JSON excerpts in messages come from untrusted files: escape control characters
// so every message stays on one line, and cut long strings so a message stays readable.
std::string printable(std::string_view text) {
  constexpr size_t kMaxShown = 120;
  std::string out;
  for (size_t i = 0; i < text.size() && i < kMaxShown; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f)
      out += fmt::format("\\x{:02x}", c);
    else
      out += char(c);
  }
  if (text.size() > kMaxShown) out += "...";
  return out;
}

std::string quote_name(std::string_view name) { return "'" + printable(name) + "'"; }

// Parse errors start with the file they are about.
template <class... Args>
[[noreturn]] void fail_in(const std::string& source, fmt::format_string<Args...> format,
                          Args&&... args) {
  throw Error(source + ": " + fmt::format(format, std::forward<Args>(args)...));
}

std::string shape_string(const std::vector<int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

std::optional<DType> parse_dtype(std::string_view name) {
  for (DType d : {DType::F32, DType::F64, DType::I64, DType::I32, DType::U8})
    if (dtype_name(d) == name) return d;
  return std::nullopt;
}

// Element count of `shape` times `element_size`, or nullopt if a dimension is negative or
// the product overflows 64 bits (a hostile shape must not wrap around to a small size).
std::optional<uint64_t> checked_byte_size(const std::vector<int64_t>& shape, size_t element_size) {
  uint64_t bytes = element_size;
  for (int64_t d : shape) {
    if (d < 0 || __builtin_mul_overflow(bytes, uint64_t(d), &bytes)) return std::nullopt;
  }
  return bytes;
}

// The unsigned integer with the size of T, to move T's bytes through shifts.
template <class T>
using UnsignedOfSize = std::conditional_t<sizeof(T) == 8, uint64_t,
                                          std::conditional_t<sizeof(T) == 4, uint32_t, uint8_t>>;

template <class T>
void append_little_endian(std::string& out, const T* data, size_t count) {
  if constexpr (std::endian::native == std::endian::little) {
    if (count > 0) out.append(reinterpret_cast<const char*>(data), count * sizeof(T));
  } else {
    for (size_t i = 0; i < count; ++i) {
      const auto bits = std::bit_cast<UnsignedOfSize<T>>(data[i]);
      for (size_t b = 0; b < sizeof(T); ++b) out.push_back(char((bits >> (8 * b)) & 0xff));
    }
  }
}

template <class T>
void copy_from_little_endian(T* out, const std::string& bytes, size_t count) {
  if constexpr (std::endian::native == std::endian::little) {
    if (count > 0) std::memcpy(out, bytes.data(), count * sizeof(T));
  } else {
    for (size_t i = 0; i < count; ++i) {
      UnsignedOfSize<T> bits = 0;
      for (size_t b = 0; b < sizeof(T); ++b)
        bits |= UnsignedOfSize<T>(static_cast<unsigned char>(bytes[i * sizeof(T) + b])) << (8 * b);
      out[i] = std::bit_cast<T>(bits);
    }
  }
}

// One tensor entry of the header as declared, before it is checked against the buffer.
struct HeaderEntry {
  std::string name;
  std::optional<DType> dtype;
  std::optional<std::vector<int64_t>> shape;
  std::optional<std::vector<uint64_t>> offsets;
};

// Streams the header through nlohmann's SAX parser instead of building a DOM: the header's
// structure is checked as it is read, nesting deeper than the format allows is rejected at
// once, and memory stays proportional to what the format needs (duplicate keys, which a
// DOM would silently merge, are caught too).
class HeaderReader {
 public:
  using json = nlohmann::json;

  explicit HeaderReader(const std::string& source) : source_(source) {}

  bool done() const { return state_ == State::Done; }
  std::vector<HeaderEntry>& entries() { return entries_; }
  std::map<std::string, std::string>& metadata() { return metadata_; }

  bool null() { return value(Kind::Null); }
  bool boolean(bool) { return value(Kind::Boolean); }
  bool number_integer(json::number_integer_t v) {
    // The lexer reports non-negative integers as unsigned; "-0" is the only exception.
    return v >= 0 ? number_unsigned(json::number_unsigned_t(v)) : value(Kind::Negative);
  }
  bool number_unsigned(json::number_unsigned_t v) { return value(Kind::Unsigned, nullptr, v); }
  bool number_float(json::number_float_t, const std::string&) { return value(Kind::Float); }
  bool string(std::string& s) { return value(Kind::String, &s); }
  bool binary(json::binary_t&) { return value(Kind::Binary); }
  bool start_object(size_t) { return value(Kind::Object); }
  bool start_array(size_t) { return value(Kind::Array); }

  bool key(std::string& k) {
    if (state_ == State::Top) {
      if (k == "__metadata__" ? seen_metadata_ : !names_.insert(k).second)
        bad("header lists {} twice", quote_name(k));
      if (k == "__metadata__") seen_metadata_ = true;
      top_key_ = k;
    } else if (state_ == State::Metadata) {
      if (metadata_.count(k)) bad("__metadata__ has key {} twice", quote_name(k));
      meta_key_ = k;
    } else {
      HeaderEntry& e = entries_.back();
      const bool known = k == "dtype" || k == "shape" || k == "data_offsets";
      if (!known) bad("tensor {} has unknown field {}", quote_name(e.name), quote_name(k));
      const bool repeated = (k == "dtype" && e.dtype) || (k == "shape" && e.shape) ||
                            (k == "data_offsets" && e.offsets);
      if (repeated) bad("tensor {} has field {} twice", quote_name(e.name), quote_name(k));
      field_ = k;
    }
    return true;
  }

  bool end_object() {
    if (state_ == State::Top) {
      state_ = State::Done;
    } else if (state_ == State::Metadata) {
      state_ = State::Top;
    } else {
      const HeaderEntry& e = entries_.back();
      for (const char* field : {"dtype", "shape", "data_offsets"}) {
        const bool present = field == std::string_view("dtype")   ? bool(e.dtype)
                             : field == std::string_view("shape") ? bool(e.shape)
                                                                  : bool(e.offsets);
        if (!present) bad("tensor {} has no '{}'", quote_name(e.name), field);
      }
      state_ = State::Top;
    }
    return true;
  }

  bool end_array() {
    HeaderEntry& e = entries_.back();
    if (field_ == "data_offsets" && e.offsets->size() != 2)
      bad("data_offsets of tensor {} must be [begin, end], got {} numbers", quote_name(e.name),
          e.offsets->size());
    state_ = State::Entry;
    return true;
  }

  bool parse_error(size_t, const std::string&, const json::exception& ex) {
    // Drop nlohmann's "[json.exception.parse_error.101] " prefix; keep the position.
    std::string_view what = ex.what();
    if (const size_t close = what.find("] "); close != what.npos) what.remove_prefix(close + 2);
    bad("header is not valid JSON: {}", printable(what));
  }

 private:
  enum class State { Start, Top, Metadata, Entry, Array, Done };
  enum class Kind { Null, Boolean, Negative, Unsigned, Float, String, Binary, Object, Array };

  static const char* kind_name(Kind kind) {
    switch (kind) {
      case Kind::Null:
        return "null";
      case Kind::Boolean:
        return "a boolean";
      case Kind::Negative:
        return "a negative number";
      case Kind::Unsigned:
        return "a number";
      case Kind::Float:
        return "a fractional or out-of-range number";
      case Kind::String:
        return "a string";
      case Kind::Binary:
        return "binary data";
      case Kind::Object:
        return "an object";
      case Kind::Array:
        return "an array";
    }
    return "a value";
  }

  template <class... Args>
  [[noreturn]] void bad(fmt::format_string<Args...> format, Args&&... args) const {
    fail_in(source_, format, std::forward<Args>(args)...);
  }

  // Every JSON value (scalar, or the start of an object/array) arrives here; what is
  // allowed depends only on where we are in the header.
  bool value(Kind kind, std::string* text = nullptr, uint64_t number = 0) {
    switch (state_) {
      case State::Start:
        if (kind != Kind::Object) bad("header is not a JSON object");
        state_ = State::Top;
        return true;
      case State::Top:
        if (top_key_ == "__metadata__") {
          // The reference reader treats a null __metadata__ as absent.
          if (kind == Kind::Null) return true;
          if (kind != Kind::Object) bad("__metadata__ must be an object, got {}", kind_name(kind));
          state_ = State::Metadata;
          return true;
        }
        if (kind != Kind::Object)
          bad("entry {} must be an object with dtype, shape and data_offsets, got {}",
              quote_name(top_key_), kind_name(kind));
        entries_.push_back(HeaderEntry{top_key_, {}, {}, {}});
        state_ = State::Entry;
        return true;
      case State::Metadata:
        if (kind != Kind::String)
          bad("__metadata__ value of key {} must be a string, got {}", quote_name(meta_key_),
              kind_name(kind));
        metadata_.emplace(meta_key_, std::move(*text));
        return true;
      case State::Entry:
        return entry_field(kind, text);
      case State::Array:
        return array_element(kind, number);
      case State::Done:
        break;
    }
    bad("header has content after its closing brace");
  }

  bool entry_field(Kind kind, std::string* text) {
    HeaderEntry& e = entries_.back();
    if (field_ == "dtype") {
      if (kind != Kind::String)
        bad("dtype of tensor {} must be a string, got {}", quote_name(e.name), kind_name(kind));
      e.dtype = parse_dtype(*text);
      if (!e.dtype)
        bad("tensor {} has unsupported dtype {} (supported: F32, F64, I64, I32, U8)",
            quote_name(e.name), quote_name(*text));
      return true;
    }
    if (kind != Kind::Array)
      bad("{} of tensor {} must be an array, got {}", field_, quote_name(e.name), kind_name(kind));
    if (field_ == "shape")
      e.shape.emplace();
    else
      e.offsets.emplace();
    state_ = State::Array;
    return true;
  }

  bool array_element(Kind kind, uint64_t number) {
    HeaderEntry& e = entries_.back();
    if (kind != Kind::Unsigned)
      bad("{} of tensor {} must hold non-negative integers, got {}", field_, quote_name(e.name),
          kind_name(kind));
    if (field_ == "shape") {
      if (number > uint64_t(INT64_MAX))
        bad("shape of tensor {} has absurd dimension {}", quote_name(e.name), number);
      e.shape->push_back(int64_t(number));
    } else {
      // Stop at the third number: a huge array here must not grow memory.
      if (e.offsets->size() == 2)
        bad("data_offsets of tensor {} must be [begin, end], got more than 2 numbers",
            quote_name(e.name));
      e.offsets->push_back(number);
    }
    return true;
  }

  const std::string& source_;
  State state_ = State::Start;
  std::string top_key_, meta_key_, field_;
  bool seen_metadata_ = false;
  std::set<std::string> names_;
  std::vector<HeaderEntry> entries_;
  std::map<std::string, std::string> metadata_;
};

template <class T>
void add_typed(SafetensorsFile& file, DType dtype, std::string name, std::vector<int64_t> shape,
               const T* data) {
  if (file.find(name)) fail("tensor {} is already in the safetensors file", quote_name(name));
  const std::optional<uint64_t> bytes = checked_byte_size(shape, sizeof(T));
  if (!bytes) fail("tensor {} has invalid shape {}", quote_name(name), shape_string(shape));
  Tensor t{std::move(name), dtype, std::move(shape), {}};
  t.bytes.reserve(size_t(*bytes));
  append_little_endian(t.bytes, data, size_t(*bytes / sizeof(T)));
  file.tensors.push_back(std::move(t));
}

template <class T>
std::vector<T> get_typed(const SafetensorsFile& file, DType dtype, const std::string& name,
                         const std::vector<int64_t>& expected_shape) {
  const std::string where = file.source.empty() ? "" : file.source + ": ";
  const Tensor* t = file.find(name);
  if (!t) fail("{}tensor {} not found", where, quote_name(name));
  if (t->dtype != dtype)
    fail("{}tensor {} has dtype {}, expected {}", where, quote_name(name), dtype_name(t->dtype),
         dtype_name(dtype));
  if (t->shape != expected_shape)
    fail("{}tensor {} has shape {}, expected {}", where, quote_name(name), shape_string(t->shape),
         shape_string(expected_shape));
  // Only a Tensor assembled by hand can get here inconsistent; parsed ones are checked.
  const std::optional<uint64_t> bytes = checked_byte_size(t->shape, sizeof(T));
  if (!bytes || *bytes != t->bytes.size())
    fail("{}tensor {} holds {} bytes, which does not match its shape {}", where, quote_name(name),
         t->bytes.size(), shape_string(t->shape));
  std::vector<T> out(size_t(*bytes / sizeof(T)));
  copy_from_little_endian(out.data(), t->bytes, out.size());
  return out;
}

}  // namespace

std::string_view dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F32:
      return "F32";
    case DType::F64:
      return "F64";
    case DType::I64:
      return "I64";
    case DType::I32:
      return "I32";
    case DType::U8:
      return "U8";
  }
  return "?";
}

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::F32:
      return 4;
    case DType::F64:
      return 8;
    case DType::I64:
      return 8;
    case DType::I32:
      return 4;
    case DType::U8:
      return 1;
  }
  return 0;
}

const Tensor* SafetensorsFile::find(const std::string& name) const {
  for (const Tensor& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

void SafetensorsFile::add_f32(std::string name, std::vector<int64_t> shape, const float* data) {
  add_typed(*this, DType::F32, std::move(name), std::move(shape), data);
}
void SafetensorsFile::add_f64(std::string name, std::vector<int64_t> shape, const double* data) {
  add_typed(*this, DType::F64, std::move(name), std::move(shape), data);
}
void SafetensorsFile::add_i64(std::string name, std::vector<int64_t> shape, const int64_t* data) {
  add_typed(*this, DType::I64, std::move(name), std::move(shape), data);
}

std::vector<float> SafetensorsFile::get_f32(const std::string& name,
                                            const std::vector<int64_t>& expected_shape) const {
  return get_typed<float>(*this, DType::F32, name, expected_shape);
}
std::vector<double> SafetensorsFile::get_f64(const std::string& name,
                                             const std::vector<int64_t>& expected_shape) const {
  return get_typed<double>(*this, DType::F64, name, expected_shape);
}
std::vector<int64_t> SafetensorsFile::get_i64(const std::string& name,
                                              const std::vector<int64_t>& expected_shape) const {
  return get_typed<int64_t>(*this, DType::I64, name, expected_shape);
}

std::string serialize_safetensors(const SafetensorsFile& file) {
  // ordered_json keeps insertion order, so the header lists tensors in buffer order with
  // keys in the reference writer's order (dtype, shape, data_offsets).
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!file.metadata.empty()) header["__metadata__"] = file.metadata;
  std::set<std::string_view> names;
  uint64_t offset = 0;
  for (const Tensor& t : file.tensors) {
    if (t.name == "__metadata__") fail("a tensor cannot be named '__metadata__'");
    if (!names.insert(t.name).second) fail("tensor {} appears twice", quote_name(t.name));
    const std::optional<uint64_t> bytes = checked_byte_size(t.shape, dtype_size(t.dtype));
    if (!bytes) fail("tensor {} has invalid shape {}", quote_name(t.name), shape_string(t.shape));
    if (*bytes != t.bytes.size())
      fail("tensor {} holds {} bytes but dtype {} and shape {} need {}", quote_name(t.name),
           t.bytes.size(), dtype_name(t.dtype), shape_string(t.shape), *bytes);
    header[t.name] = {{"dtype", dtype_name(t.dtype)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + *bytes}}};
    offset += *bytes;
  }

  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception&) {
    fail("cannot write safetensors: a tensor name or metadata string is not valid UTF-8");
  }
  // Padding makes the data buffer start 8-byte aligned, as the reference writer does.
  text.append((8 - text.size() % 8) % 8, ' ');
  if (text.size() > kMaxHeaderBytes)
    fail("safetensors header would be {} bytes, over the {}-byte limit readers accept", text.size(),
         kMaxHeaderBytes);

  std::string out;
  out.reserve(8 + text.size() + size_t(offset));
  const uint64_t header_size = text.size();
  for (int b = 0; b < 8; ++b) out.push_back(char((header_size >> (8 * b)) & 0xff));
  out += text;
  for (const Tensor& t : file.tensors) out += t.bytes;
  return out;
}

SafetensorsFile parse_safetensors(std::string_view bytes, const std::string& source_name) {
  if (bytes.size() < 8)
    fail_in(source_name,
            "file is {} bytes, shorter than the 8-byte header length (not a safetensors file?)",
            bytes.size());
  uint64_t header_size = 0;
  for (int b = 0; b < 8; ++b)
    header_size |= uint64_t(static_cast<unsigned char>(bytes[b])) << (8 * b);
  if (header_size > kMaxHeaderBytes)
    fail_in(source_name, "header length {} exceeds the {}-byte limit (not a safetensors file?)",
            header_size, kMaxHeaderBytes);
  if (header_size > bytes.size() - 8)
    fail_in(source_name, "file is truncated: header length is {} but only {} bytes follow",
            header_size, bytes.size() - 8);
  const std::string_view header = bytes.substr(8, size_t(header_size));
  const std::string_view buffer = bytes.substr(8 + size_t(header_size));
  // The reference reader requires this too; it rejects arrays, bare values and padding
  // placed before the object.
  if (header.empty() || header.front() != '{')
    fail_in(source_name, "header is not a JSON object (does not start with '{{')");

  // JSON text never contains a raw NUL, and nlohmann's lexer would take one as the end of
  // input, silently ignoring whatever follows it.
  if (const size_t nul = header.find('\0'); nul != header.npos)
    fail_in(source_name, "header is not valid JSON: NUL byte at header offset {}", nul);

  HeaderReader reader(source_name);
  try {
    nlohmann::json::sax_parse(header.begin(), header.end(), &reader);
  } catch (const nlohmann::json::exception& ex) {
    fail_in(source_name, "header is not valid JSON: {}", printable(ex.what()));
  }
  if (!reader.done()) fail_in(source_name, "header is not a complete JSON object");
  std::vector<HeaderEntry>& entries = reader.entries();

  // Each tensor on its own: sizes must be consistent and within the buffer.
  for (const HeaderEntry& e : entries) {
    const std::optional<uint64_t> need = checked_byte_size(*e.shape, dtype_size(*e.dtype));
    if (!need)
      fail_in(source_name,
              "shape {} of tensor {} is absurdly large (its byte size overflows 64 bits)",
              shape_string(*e.shape), quote_name(e.name));
    const uint64_t begin = (*e.offsets)[0], end = (*e.offsets)[1];
    if (begin > end)
      fail_in(source_name, "data_offsets [{}, {}] of tensor {} have begin > end", begin, end,
              quote_name(e.name));
    if (end > buffer.size())
      fail_in(source_name,
              "file is truncated: tensor {} needs data bytes [{}, {}) but the data buffer has {}",
              quote_name(e.name), begin, end, buffer.size());
    if (end - begin != *need)
      fail_in(
          source_name,
          "tensor {} has data_offsets [{}, {}] ({} bytes) but dtype {} and shape {} need {} bytes",
          quote_name(e.name), begin, end, end - begin, dtype_name(*e.dtype), shape_string(*e.shape),
          *need);
  }

  // Together the tensors must tile the buffer exactly: no overlaps, no gaps, nothing after.
  // Gaps are rejected because the format forbids unindexed bytes (they could hide content).
  std::sort(entries.begin(), entries.end(),
            [](const HeaderEntry& a, const HeaderEntry& b) { return *a.offsets < *b.offsets; });
  uint64_t covered = 0;
  const HeaderEntry* previous = nullptr;
  for (const HeaderEntry& e : entries) {
    const uint64_t begin = (*e.offsets)[0];
    if (begin < covered)
      fail_in(source_name, "tensors {} and {} overlap in the data buffer",
              quote_name(previous->name), quote_name(e.name));
    if (begin > covered)
      fail_in(source_name, "data buffer bytes [{}, {}) are not covered by any tensor", covered,
              begin);
    covered = (*e.offsets)[1];
    previous = &e;
  }
  if (covered != buffer.size())
    fail_in(source_name, "{} trailing bytes after the last tensor are not covered by any tensor",
            buffer.size() - covered);

  SafetensorsFile file;
  file.source = source_name;
  file.metadata = std::move(reader.metadata());
  file.tensors.reserve(entries.size());
  for (HeaderEntry& e : entries) {
    const uint64_t begin = (*e.offsets)[0], end = (*e.offsets)[1];
    file.tensors.push_back(Tensor{std::move(e.name), *e.dtype, std::move(*e.shape),
                                  std::string(buffer.substr(size_t(begin), size_t(end - begin)))});
  }
  return file;
}

void save_safetensors(const std::filesystem::path& path, const SafetensorsFile& file) {
  write_file_atomic(path, serialize_safetensors(file));
}

std::string tensor_data_checksum(const SafetensorsFile& file) {
  uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a offset basis
  auto mix = [&h](std::string_view bytes) {
    for (unsigned char c : bytes) {
      h ^= c;
      h *= 0x100000001b3ULL;  // FNV prime
    }
  };
  for (const Tensor& t : file.tensors) {
    mix(t.name);
    mix(dtype_name(t.dtype));
    for (int64_t d : t.shape) mix(std::to_string(d) + ",");
    mix(t.bytes);
  }
  return fmt::format("{:016x}", h);
}

SafetensorsFile load_safetensors(const std::filesystem::path& path) {
  return parse_safetensors(read_file(path), path.string());
}

}  // namespace mesalab
