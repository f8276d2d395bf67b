#pragma once
// A C library's object owned by a unique_ptr that releases it with the library's own
// function: CHandle<X509, X509_free>, CHandle<sd_bus, sd_bus_close_unref>.

#include <memory>

namespace ipopsec {

template <auto Free>
struct FreeWith {
  template <class T>
  void operator()(T* p) const {
    Free(p);
  }
};

template <class T, auto Free>
using CHandle = std::unique_ptr<T, FreeWith<Free>>;

}  // namespace ipopsec
