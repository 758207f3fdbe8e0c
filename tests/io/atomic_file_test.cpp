#include "io/atomic_file.hpp"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.hpp"

namespace mesalab {
namespace {

namespace fs = std::filesystem;

// Each test gets a fresh directory, so leftover temporary files are easy to detect.
class AtomicFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "mesalab_atomic_XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    // A test may have made the directory read-only; restore it so it can be removed.
    fs::permissions(dir_, fs::perms::owner_all, fs::perm_options::add);
    fs::remove_all(dir_);
  }

  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_)) names.push_back(e.path().filename());
    std::sort(names.begin(), names.end());
    return names;
  }

  fs::path dir_;
};

TEST_F(AtomicFileTest, WritesExactBytesAndReadsThemBack) {
  const fs::path path = dir_ / "a.bin";
  const std::string bytes("hello\0world\xff", 12);  // binary data must survive unchanged
  write_file_atomic(path, bytes);
  EXPECT_EQ(read_file(path), bytes);
  EXPECT_EQ(entries(), std::vector<std::string>{"a.bin"});
}

TEST_F(AtomicFileTest, OverwriteWithShorterContentLeavesNoOldTail) {
  const fs::path path = dir_ / "a.txt";
  write_file_atomic(path, "a long first version");
  write_file_atomic(path, "short");
  EXPECT_EQ(read_file(path), "short");
  write_file_atomic(path, "");
  EXPECT_EQ(read_file(path), "");
  EXPECT_EQ(entries(), std::vector<std::string>{"a.txt"});
}

TEST_F(AtomicFileTest, TargetIsDirectoryFailsAndLeavesNoTempFile) {
  const fs::path target = dir_ / "ckpt";
  fs::create_directory(target);
  write_file_atomic(target / "inside", "keep");
  try {
    write_file_atomic(target, "new");
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(target.string()), std::string::npos) << e.what();
  }
  EXPECT_TRUE(fs::is_directory(target));
  EXPECT_EQ(read_file(target / "inside"), "keep");
  EXPECT_EQ(entries(), std::vector<std::string>{"ckpt"});
}

TEST_F(AtomicFileTest, FailedWriteKeepsOldContent) {
  const fs::path path = dir_ / "latest.safetensors";
  write_file_atomic(path, "old checkpoint");
  // Occupy the temporary name with a directory so that creating the temp file fails.
  const fs::path blocker = path.string() + ".tmp." + std::to_string(::getpid());
  fs::create_directory(blocker);
  try {
    write_file_atomic(path, "new checkpoint");
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(path.string()), std::string::npos) << message;
    EXPECT_NE(message.find("Is a directory"), std::string::npos) << message;
  }
  EXPECT_EQ(read_file(path), "old checkpoint");
  // The directory was not ours, so it must not have been removed either.
  EXPECT_TRUE(fs::is_directory(blocker));
}

// RAII: lower the file-size limit (which binds root too) and ignore SIGXFSZ so that write(2)
// fails with EFBIG part-way through, like a full disk; restore both afterwards.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    getrlimit(RLIMIT_FSIZE, &old_limit_);
    old_handler_ = std::signal(SIGXFSZ, SIG_IGN);
    rlimit limit = old_limit_;
    limit.rlim_cur = bytes;
    ok_ = setrlimit(RLIMIT_FSIZE, &limit) == 0;
  }
  ~FileSizeLimit() {
    setrlimit(RLIMIT_FSIZE, &old_limit_);
    std::signal(SIGXFSZ, old_handler_);
  }
  bool ok() const { return ok_; }

 private:
  rlimit old_limit_{};
  void (*old_handler_)(int) = nullptr;
  bool ok_ = false;
};

TEST_F(AtomicFileTest, WriteFailingMidwayRemovesTempAndKeepsOldContent) {
  const fs::path path = dir_ / "big.bin";
  write_file_atomic(path, "old");
  const std::string big(1 << 20, 'x');
  std::string message;
  {
    FileSizeLimit limit(4096);
    ASSERT_TRUE(limit.ok());
    try {
      write_file_atomic(path, big);
    } catch (const Error& e) {
      message = e.what();
    }
  }
  ASSERT_FALSE(message.empty()) << "write beyond RLIMIT_FSIZE did not fail";
  EXPECT_NE(message.find(path.string()), std::string::npos) << message;
  EXPECT_NE(message.find("writing"), std::string::npos) << message;
  EXPECT_EQ(read_file(path), "old");
  EXPECT_EQ(entries(), std::vector<std::string>{"big.bin"});
}

TEST_F(AtomicFileTest, UnwritableDirectoryFailsAndKeepsOldContent) {
  if (::geteuid() == 0) GTEST_SKIP() << "root ignores directory permissions";
  const fs::path path = dir_ / "a.txt";
  write_file_atomic(path, "old");
  fs::permissions(dir_, fs::perms::owner_read | fs::perms::owner_exec);
  EXPECT_THROW(write_file_atomic(path, "new"), Error);
  fs::permissions(dir_, fs::perms::owner_all);
  EXPECT_EQ(read_file(path), "old");
  EXPECT_EQ(entries(), std::vector<std::string>{"a.txt"});
}

TEST_F(AtomicFileTest, MissingParentDirectoryNamesPathAndReason) {
  const fs::path path = dir_ / "no" / "such" / "file";
  try {
    write_file_atomic(path, "x");
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.rfind("cannot write " + path.string() + ":", 0), 0u) << message;
    EXPECT_NE(message.find("No such file or directory"), std::string::npos) << message;
  }
}

TEST_F(AtomicFileTest, ReadMissingFileThrowsWithPathAndReason) {
  const fs::path path = dir_ / "missing.json";
  try {
    read_file(path);
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "cannot read " + path.string() + ": No such file or directory");
    EXPECT_EQ(e.exit_code(), 2);
  }
}

TEST_F(AtomicFileTest, ReadDirectoryThrows) {
  try {
    read_file(dir_);
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Is a directory"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace mesalab
