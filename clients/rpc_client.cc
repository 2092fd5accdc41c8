// Channel, deadlines, auth and error printing for the `homeward` gRPC subcommands.
#include "clients/rpc_client.h"

#include <google/protobuf/util/json_util.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace homeward::cli {
namespace {

namespace fs = std::filesystem;

// Room for a server reply carrying a full-size photo, or a case's export archive (the server
// refuses one over 256 MB).
constexpr int kMaxReceiveBytes = 257 * 1024 * 1024;

absl::StatusOr<std::string> ReadTextFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot read file"));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

RpcClient::RpcClient(std::unique_ptr<v1::Homeward::Stub> stub, std::string api_key, double timeout)
    : stub_(std::move(stub)), api_key_(std::move(api_key)), timeout_seconds_(timeout) {}

absl::StatusOr<std::unique_ptr<RpcClient>> RpcClient::Connect(const GlobalOptions& global) {
  if (global.server.empty()) {
    return absl::InvalidArgumentError("no server: pass --server HOST:PORT or set HOMEWARD_SERVER");
  }
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (global.tls || !global.ca_cert.empty()) {
    grpc::SslCredentialsOptions ssl;
    if (!global.ca_cert.empty()) {
      absl::StatusOr<std::string> pem = ReadTextFile(global.ca_cert);
      if (!pem.ok()) return pem.status();
      ssl.pem_root_certs = *std::move(pem);
    }
    creds = grpc::SslCredentials(ssl);
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxReceiveBytes);
  args.SetMaxSendMessageSize(kMaxReceiveBytes);
  auto channel = grpc::CreateCustomChannel(global.server, creds, args);
  return std::unique_ptr<RpcClient>(
      new RpcClient(v1::Homeward::NewStub(channel), global.api_key, global.timeout_seconds));
}

std::unique_ptr<grpc::ClientContext> RpcClient::NewContext(CallKind kind) const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  double seconds = timeout_seconds_ > 0        ? timeout_seconds_
                   : kind == CallKind::kUpload ? kUploadCallSeconds
                                               : kQuickCallSeconds;
  ctx->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000)));
  if (!api_key_.empty()) ctx->AddMetadata("authorization", "Bearer " + api_key_);
  return ctx;
}

int PrintRpcError(const grpc::Status& status) {
  std::cerr << "error: "
            << absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code())) << ": "
            << status.error_message() << "\n";
  return 1;
}

int PrintError(absl::string_view message, int exit_code) {
  std::cerr << "error: " << message << "\n";
  return exit_code;
}

absl::StatusOr<std::string> ReadImageFile(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    return absl::NotFoundError(absl::StrCat(path, ": no such file"));
  }
  const auto size = fs::file_size(path, ec);
  if (ec) return absl::NotFoundError(absl::StrCat(path, ": cannot read file: ", ec.message()));
  if (static_cast<int64_t>(size) > kMaxImageBytes) {
    return absl::ResourceExhaustedError(absl::StrFormat("%s: file is %.1f MB; the limit is %d MB",
                                                        path, size / (1024.0 * 1024.0),
                                                        kMaxImageBytes / (1024 * 1024)));
  }
  if (size == 0) return absl::InvalidArgumentError(absl::StrCat(path, ": file is empty"));
  std::ifstream in(path, std::ios::binary);
  std::string bytes(size, '\0');
  if (!in.read(bytes.data(), static_cast<std::streamsize>(size))) {
    return absl::NotFoundError(absl::StrCat(path, ": cannot read file"));
  }
  return bytes;
}

absl::StatusOr<v1::Age> ParseAge(absl::string_view text, bool always_estimated) {
  auto bad = [&] {
    return absl::InvalidArgumentError(
        absl::StrCat("age '", text, "': expected years as N or MIN-MAX (e.g. 7 or 8-10)"));
  };
  std::vector<absl::string_view> parts = absl::StrSplit(text, '-');
  float lo = 0, hi = 0;
  if (parts.size() == 1) {
    if (!absl::SimpleAtof(parts[0], &lo)) return bad();
    hi = lo;
  } else if (parts.size() == 2) {
    if (!absl::SimpleAtof(parts[0], &lo) || !absl::SimpleAtof(parts[1], &hi)) return bad();
  } else {
    return bad();
  }
  if (lo < 0 || hi < lo || hi > 120) return bad();
  v1::Age age;
  age.set_min_years(lo);
  age.set_max_years(hi);
  age.set_estimated(always_estimated || parts.size() == 2);
  age.set_known(true);
  return age;
}

bool IsDateOrEmpty(absl::string_view t) {
  if (t.empty()) return true;
  if (t.size() != 10 || t[4] != '-' || t[7] != '-') return false;
  for (int i : {0, 1, 2, 3, 5, 6, 8, 9}) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(t[i]))) return false;
  }
  const int month = (t[5] - '0') * 10 + (t[6] - '0');
  const int day = (t[8] - '0') * 10 + (t[9] - '0');
  return month >= 1 && month <= 12 && day >= 1 && day <= 31;
}

absl::StatusOr<v1::CaseKind> ParseKind(absl::string_view text) {
  const std::string t = absl::AsciiStrToLower(text);
  if (t == "missing") return v1::MISSING;
  if (t == "found") return v1::FOUND;
  if (t == "sighting") return v1::SIGHTING;
  return absl::InvalidArgumentError(
      absl::StrCat("kind '", text, "': expected missing, found or sighting"));
}

absl::StatusOr<v1::CaseStatus> ParseStatus(absl::string_view text) {
  const std::string t = absl::AsciiStrToLower(text);
  if (t == "open") return v1::OPEN;
  if (t == "reunited") return v1::REUNITED;
  if (t == "closed") return v1::CLOSED;
  if (t == "withdrawn") return v1::WITHDRAWN;
  return absl::InvalidArgumentError(
      absl::StrCat("status '", text, "': expected open, reunited, closed or withdrawn"));
}

absl::StatusOr<v1::Sex> ParseSex(absl::string_view text) {
  const std::string t = absl::AsciiStrToLower(absl::StripAsciiWhitespace(text));
  if (t.empty()) return v1::SEX_UNSPECIFIED;
  if (t == "f" || t == "female") return v1::FEMALE;
  if (t == "m" || t == "male") return v1::MALE;
  return absl::InvalidArgumentError(absl::StrCat("sex '", text, "': expected f or m"));
}

std::string KindName(v1::CaseKind kind) {
  switch (kind) {
    case v1::MISSING:
      return "missing";
    case v1::FOUND:
      return "found";
    case v1::SIGHTING:
      return "sighting";
    default:
      return "-";
  }
}

std::string StatusName(v1::CaseStatus status) {
  switch (status) {
    case v1::OPEN:
      return "open";
    case v1::REUNITED:
      return "reunited";
    case v1::CLOSED:
      return "closed";
    case v1::WITHDRAWN:
      return "withdrawn";
    default:
      return "-";
  }
}

std::string SexName(v1::Sex sex) {
  switch (sex) {
    case v1::FEMALE:
      return "f";
    case v1::MALE:
      return "m";
    default:
      return "-";
  }
}

std::string AgeText(const v1::Age& age) {
  if (!age.known()) return "-";
  std::string s = age.min_years() == age.max_years()
                      ? absl::StrFormat("%.3g", age.min_years())
                      : absl::StrFormat("%.3g-%.3g", age.min_years(), age.max_years());
  if (age.estimated()) absl::StrAppend(&s, " est.");
  return s;
}

void PrintJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  std::string out;
  google::protobuf::util::MessageToJsonString(message, &out, options);
  std::cout << out << "\n";
}

}  // namespace homeward::cli
