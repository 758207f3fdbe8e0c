#include "io/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

#include "core/error.hpp"

namespace mesalab {
namespace {

// std::strerror may share a static buffer between threads; error_code::message does not.
std::string os_reason(int err) { return std::error_code(err, std::generic_category()).message(); }

// Retries on EINTR so a signal arriving during a checkpoint does not fail the write.
int fsync_retrying(int fd) {
  int rc;
  do rc = ::fsync(fd);
  while (rc != 0 && errno == EINTR);
  return rc;
}

// write(2) may write less than asked (signals, large sizes); loop until done. Returns false
// with errno set on failure.
bool write_all(int fd, const char* data, size_t size) {
  while (size > 0) {
    // Linux caps a single write at ~2 GiB; stay below it explicitly.
    const ssize_t written = ::write(fd, data, std::min(size, size_t{1} << 30));
    if (written < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (written == 0) {
      errno = EIO;
      return false;
    }
    data += written;
    size -= size_t(written);
  }
  return true;
}

}  // namespace

void write_file_atomic(const std::filesystem::path& path, std::string_view bytes) {
  const std::string target = path.string();
  const std::string tmp = target + ".tmp." + std::to_string(::getpid());

  // O_NOFOLLOW: never write through a symlink someone placed at the temporary name.
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0666);
  if (fd < 0) {
    // We did not create the temporary file, so there is nothing of ours to remove.
    fail_runtime("cannot write {}: cannot create temporary file {}: {}", target, tmp,
                 os_reason(errno));
  }

  // Once the temporary file exists every failure must remove it, leaving `path` untouched.
  auto abandon = [&](const char* step) {
    const int err = errno;
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    fail_runtime("cannot write {}: {} temporary file {}: {}", target, step, tmp, os_reason(err));
  };
  if (!write_all(fd, bytes.data(), bytes.size())) abandon("writing");
  if (fsync_retrying(fd) != 0) abandon("syncing");
  const int close_rc = ::close(fd);
  fd = -1;
  // close can report deferred write errors (e.g. on NFS), so it is checked like write.
  if (close_rc != 0) abandon("closing");
  if (::rename(tmp.c_str(), target.c_str()) != 0) abandon("renaming");

  // The new content is in place; syncing the directory makes the rename durable.
  std::filesystem::path dir = path.parent_path();
  if (dir.empty()) dir = ".";
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) {
    fail_runtime("cannot write {}: file replaced but its directory could not be opened to sync: {}",
                 target, os_reason(errno));
  }
  const int sync_rc = fsync_retrying(dir_fd);
  const int sync_err = errno;
  ::close(dir_fd);
  // EINVAL means this filesystem does not support syncing directories; nothing more to do.
  if (sync_rc != 0 && sync_err != EINVAL) {
    fail_runtime("cannot write {}: file replaced but its directory could not be synced: {}", target,
                 os_reason(sync_err));
  }
}

std::string read_file(const std::filesystem::path& path) {
  const std::string name = path.string();
  const int fd = ::open(name.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot read {}: {}", name, os_reason(errno));

  auto give_up = [&](int err) {
    ::close(fd);
    fail("cannot read {}: {}", name, os_reason(err));
  };
  struct stat info {};
  if (::fstat(fd, &info) != 0) give_up(errno);
  // Opening a directory read-only succeeds; report it here rather than as a read error.
  if (S_ISDIR(info.st_mode)) give_up(EISDIR);

  std::string content;
  if (S_ISREG(info.st_mode) && info.st_size > 0) content.reserve(size_t(info.st_size));
  char chunk[1 << 16];
  for (;;) {
    const ssize_t got = ::read(fd, chunk, sizeof chunk);
    if (got < 0) {
      if (errno == EINTR) continue;
      give_up(errno);
    }
    if (got == 0) break;
    content.append(chunk, size_t(got));
  }
  ::close(fd);
  return content;
}

}  // namespace mesalab
