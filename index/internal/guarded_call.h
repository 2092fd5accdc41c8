// GuardedCall: the one place where exceptions from Faiss (and std::bad_alloc) become
// absl::Status values, so that no exception crosses the index module's edge.
//
// Faiss failures that abort (FAISS_ASSERT) cannot be caught: callers check sizes, ids and k
// before calling in.
#ifndef HOMEWARD_INDEX_INTERNAL_GUARDED_CALL_H_
#define HOMEWARD_INDEX_INTERNAL_GUARDED_CALL_H_

#include <exception>
#include <new>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace homeward::index::internal {

// Runs `f` (returning absl::Status). RESOURCE_EXHAUSTED on std::bad_alloc, `code` (INTERNAL
// unless given) with `what` and the exception text on any other exception.
template <typename F>
absl::Status GuardedCall(const char* what, F&& f,
                         absl::StatusCode code = absl::StatusCode::kInternal) {
  try {
    return std::forward<F>(f)();
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(absl::StrCat(what, ": out of memory"));
  } catch (const std::exception& e) {
    return absl::Status(code, absl::StrCat(what, ": ", e.what()));
  } catch (...) {
    return absl::Status(code, absl::StrCat(what, ": unknown exception"));
  }
}

}  // namespace homeward::index::internal

#endif  // HOMEWARD_INDEX_INTERNAL_GUARDED_CALL_H_
