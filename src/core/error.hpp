#pragma once
// The one error type of mesalab. The library throws it; the CLI prints what() as a single
// line and exits with exit_code() (2 = bad input, 1 = runtime failure such as NaN).
#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace mesalab {

enum class ErrorKind { BadInput, Runtime };

class Error : public std::runtime_error {
 public:
  explicit Error(std::string message, ErrorKind kind = ErrorKind::BadInput)
      : std::runtime_error(std::move(message)), kind_(kind) {}
  ErrorKind kind() const { return kind_; }
  int exit_code() const { return kind_ == ErrorKind::BadInput ? 2 : 1; }

 private:
  ErrorKind kind_;
};

// Throws a BadInput error with a fmt-formatted message.
template <class... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...), ErrorKind::BadInput);
}

template <class... Args>
[[noreturn]] void fail_runtime(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...), ErrorKind::Runtime);
}

}  // namespace mesalab
