#pragma once
// Fd: the sole owner of a file descriptor; closes it when destroyed.
//
//   Fd fd{::socket(...)};      // owns the descriptor from here
//   int raw = fd.get();        // borrow, ownership stays here
//   fd.reset();                // close now
//
// Move-only. Any thread may own one, but only one thread at a time.

#include <unistd.h>

#include <utility>

namespace flux {

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) noexcept : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }

  int get() const noexcept { return fd_; }
  bool valid() const noexcept { return fd_ >= 0; }
  explicit operator bool() const noexcept { return valid(); }

  // Closes the descriptor (if any). EINTR from close() is not retried: on
  // Linux the descriptor is released either way.
  void reset() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

}  // namespace flux
