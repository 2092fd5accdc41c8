// Status propagation for Homeward's modules.
//
// Abseil 20220623 (Debian 12) has no ABSL_RETURN_IF_ERROR / ABSL_ASSIGN_OR_RETURN, so the
// project defines its two macros once, here. Modules return absl::Status / absl::StatusOr;
// only the service edge converts to grpc::Status.
#ifndef HOMEWARD_BASE_STATUS_MACROS_H_
#define HOMEWARD_BASE_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define HW_CONCAT_INNER_(a, b) a##b
#define HW_CONCAT_(a, b) HW_CONCAT_INNER_(a, b)

// Evaluates `expr` (an absl::Status) and returns it from the enclosing function if not OK.
#define HW_RETURN_IF_ERROR(expr)                      \
  do {                                                \
    ::absl::Status hw_status_ = (expr);               \
    if (!hw_status_.ok()) return hw_status_;          \
  } while (false)

// Evaluates `rexpr` (an absl::StatusOr<T>); on error returns its status, otherwise moves
// the value into `lhs` (which may be a declaration, e.g. `auto x`).
#define HW_ASSIGN_OR_RETURN(lhs, rexpr) \
  HW_ASSIGN_OR_RETURN_IMPL_(HW_CONCAT_(hw_statusor_, __LINE__), lhs, rexpr)
#define HW_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                              \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()

#endif  // HOMEWARD_BASE_STATUS_MACROS_H_
