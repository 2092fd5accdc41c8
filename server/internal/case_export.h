// The case export (ExportCase, docs/API.md and docs/PRIVACY.md): everything the catalog holds
// about one case, as one ustar archive (server/internal/tar_writer.h):
//   case.json              the case record; its photos' metadata, each with its faces (box,
//                          landmarks, quality, descriptor, model); its leads with this case's
//                          side of the evidence and every review; the audit rows naming the
//                          case, its photos, its faces or its leads
//   photos/<id>.<ext>      each photo's original bytes, byte-identical
// Nothing about another case: a lead shows the other side only as "another case" (no id, name,
// face or photo of it).
//
// THREAD SAFETY: as store::Catalog (reads only). OWNERSHIP: the archive is returned by value.
#ifndef HOMEWARD_SERVER_INTERNAL_CASE_EXPORT_H_
#define HOMEWARD_SERVER_INTERNAL_CASE_EXPORT_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "store/catalog.h"

namespace homeward::server::internal {

struct CaseExport {
  std::string archive;  // the tar file
  int photos = 0;
  int audit_rows = 0;
};

// NOT_FOUND for an unknown case; RESOURCE_EXHAUSTED when the archive would pass max_bytes;
// the catalog's errors (DATA_LOSS for a missing photo file).
absl::StatusOr<CaseExport> ExportCase(store::Catalog& catalog, int64_t case_id,
                                      const std::string& exported_by, int64_t now_ms,
                                      int64_t max_bytes);

}  // namespace homeward::server::internal

#endif  // HOMEWARD_SERVER_INTERNAL_CASE_EXPORT_H_
