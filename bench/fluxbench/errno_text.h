#pragma once
// errno as the words fluxbench prints in its failure list ("connect:
// Connection refused"): the worker's parts all name errors this way.

#include <cstring>
#include <string>

namespace flux::bench {

inline std::string errno_text(int error) {
  return std::strerror(error);
}

}  // namespace flux::bench
