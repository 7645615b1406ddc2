#pragma once
// IntrusiveList: a doubly linked list threaded through two pointer members
// of its elements, oldest first: O(1) append, unlink and pop, no allocation.
// The session table keeps two (detached sessions by age, stored sessions by
// lease renewal); an element may be in both at once, through other members.
//
// Thread contract: the owner's thread only.

namespace flux {

template <typename T, T* T::*Older, T* T::*Newer>
class IntrusiveList {
 public:
  T* oldest() const noexcept { return oldest_; }

  void push_newest(T& item) noexcept {
    item.*Older = newest_;
    item.*Newer = nullptr;
    if (newest_)
      newest_->*Newer = &item;
    else
      oldest_ = &item;
    newest_ = &item;
  }

  // No-op for an element not in the list.
  void unlink(T& item) noexcept {
    if (!contains(item)) return;
    if (item.*Older)
      (item.*Older)->*Newer = item.*Newer;
    else
      oldest_ = item.*Newer;
    if (item.*Newer)
      (item.*Newer)->*Older = item.*Older;
    else
      newest_ = item.*Older;
    item.*Older = item.*Newer = nullptr;
  }

  bool contains(const T& item) const noexcept {
    return item.*Older || item.*Newer || oldest_ == &item;
  }

 private:
  T* oldest_ = nullptr;
  T* newest_ = nullptr;
};

}  // namespace flux
