#pragma once
// Whole-file reads and crash-safe whole-file writes. Checkpoints and run files are replaced
// atomically, so a crash, a full disk or a kill never leaves a half-written file where a
// good one used to be: readers see either the old bytes or the new ones.
#include <filesystem>
#include <string>
#include <string_view>

namespace mesalab {

// Writes `bytes` to `<path>.tmp.<pid>` in the same directory (so the rename cannot cross a
// filesystem), fsyncs it, renames it over `path` and fsyncs the directory so the rename
// itself survives a power loss. On failure the temporary file is removed, `path` keeps its
// previous content, and an Error naming `path` and the OS reason is thrown.
void write_file_atomic(const std::filesystem::path& path, std::string_view bytes);

// The whole content of `path`. Throws Error("cannot read <path>: <reason>").
std::string read_file(const std::filesystem::path& path);

}  // namespace mesalab
