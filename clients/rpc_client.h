// The `homeward` CLI's connection to a Homeward server, shared by every gRPC subcommand:
// one channel, a deadline and the bearer token on every call, one way to print a failed call,
// the connect-call-print shape of a subcommand (CallAndPrint, CallPagesAndPrint), and the
// small parsers (image files, ages, dates, enum names) that several commands use.
//
// Thread safety: an RpcClient is immutable after Connect(); NewContext() and stub() may be
// called from any thread. Each ClientContext serves one call.
#ifndef HOMEWARD_CLIENTS_RPC_CLIENT_H_
#define HOMEWARD_CLIENTS_RPC_CLIENT_H_

#include <cstdint>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "clients/commands.h"
#include "homeward/v1/homeward.grpc.pb.h"

namespace homeward::cli {

// Default deadlines; --timeout overrides both.
inline constexpr double kQuickCallSeconds = 30;
inline constexpr double kUploadCallSeconds = 120;
// Photos larger than this are refused before anything is sent.
inline constexpr int64_t kMaxImageBytes = 20 * 1024 * 1024;

enum class CallKind { kQuick, kUpload };

class RpcClient {
 public:
  // Returns INVALID_ARGUMENT when no server was given (--server or HOMEWARD_SERVER), NOT_FOUND
  // when --ca-cert cannot be read. Does not contact the server.
  static absl::StatusOr<std::unique_ptr<RpcClient>> Connect(const GlobalOptions& global);

  v1::Homeward::Stub& stub() const { return *stub_; }
  // A context for one call: deadline by kind (or --timeout), `authorization: Bearer KEY`.
  std::unique_ptr<grpc::ClientContext> NewContext(CallKind kind) const;

 private:
  RpcClient(std::unique_ptr<v1::Homeward::Stub> stub, std::string api_key, double timeout);
  std::unique_ptr<v1::Homeward::Stub> stub_;
  std::string api_key_;
  double timeout_seconds_;  // 0: the per-kind default
};

// Prints "error: CODE: message" on stderr and returns the exit code 1.
int PrintRpcError(const grpc::Status& status);
// Prints "error: message" on stderr and returns `exit_code`.
int PrintError(absl::string_view message, int exit_code = 1);

// The whole file; RESOURCE_EXHAUSTED over kMaxImageBytes, NOT_FOUND when it can't be read.
absl::StatusOr<std::string> ReadImageFile(const std::string& path);

// "N" is an exact age (min = max = N); "MIN-MAX" a range, estimated. `always_estimated`
// marks "N" as estimated too (a volunteer's guess). INVALID_ARGUMENT otherwise.
absl::StatusOr<v1::Age> ParseAge(absl::string_view text, bool always_estimated);
// True for "" and "YYYY-MM-DD" with a plausible month and day.
bool IsDateOrEmpty(absl::string_view text);
// "missing", "found", "sighting" (any case); INVALID_ARGUMENT otherwise.
absl::StatusOr<v1::CaseKind> ParseKind(absl::string_view text);
absl::StatusOr<v1::CaseStatus> ParseStatus(absl::string_view text);
// "f", "m", "female", "male", "" (unspecified).
absl::StatusOr<v1::Sex> ParseSex(absl::string_view text);

// Lower-case names for tables: "missing", "open", "f".
std::string KindName(v1::CaseKind kind);
std::string StatusName(v1::CaseStatus status);
std::string SexName(v1::Sex sex);
// "8", "8-10 est.", "-" when unknown.
std::string AgeText(const v1::Age& age);

// The message as one JSON document (lowerCamelCase, int64 as strings, enums as names,
// default values printed) followed by a newline, on stdout.
void PrintJson(const google::protobuf::Message& message);

// A stub method, e.g. &v1::Homeward::Stub::GetCase.
template <typename Req, typename Resp>
using StubMethod = grpc::Status (v1::Homeward::Stub::*)(grpc::ClientContext*, const Req&, Resp*);

// The shape of a one-call subcommand: connects (when it cannot: "error: message", exit code
// 2), calls `method` once with a context of `kind` (when the call fails: PrintRpcError, exit
// code 1), then prints the reply: PrintJson with --json, else print(reply). Returns 0 then.
template <typename Req, typename Resp, typename Print>
int CallAndPrint(const GlobalOptions& global, CallKind kind, StubMethod<Req, Resp> method,
                 const Req& req, Print print) {
  auto client = RpcClient::Connect(global);
  if (!client.ok()) return PrintError(client.status().message(), 2);
  Resp reply;
  grpc::Status s = ((*client)->stub().*method)((*client)->NewContext(kind).get(), req, &reply);
  if (!s.ok()) return PrintRpcError(s);
  if (global.json) {
    PrintJson(reply);
  } else {
    print(reply);
  }
  return 0;
}

// CallAndPrint for a List call (quick calls): with `all_pages` it follows next_page_token
// until the last page, merge(page, &all) gathering each page's items into one reply whose
// next_page_token is the last page's.
template <typename Req, typename Resp, typename Merge, typename Print>
int CallPagesAndPrint(const GlobalOptions& global, StubMethod<Req, Resp> method, Req req,
                      bool all_pages, Merge merge, Print print) {
  auto client = RpcClient::Connect(global);
  if (!client.ok()) return PrintError(client.status().message(), 2);
  Resp all;
  while (true) {
    Resp page;
    grpc::Status s =
        ((*client)->stub().*method)((*client)->NewContext(CallKind::kQuick).get(), req, &page);
    if (!s.ok()) return PrintRpcError(s);
    merge(page, &all);
    all.set_next_page_token(page.next_page_token());
    if (!all_pages || page.next_page_token().empty()) break;
    req.set_page_token(page.next_page_token());
  }
  if (global.json) {
    PrintJson(all);
  } else {
    print(all);
  }
  return 0;
}

}  // namespace homeward::cli

#endif  // HOMEWARD_CLIENTS_RPC_CLIENT_H_
