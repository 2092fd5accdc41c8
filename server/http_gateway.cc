#include "server/http_gateway.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <httplib.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "homeward/v1/homeward.grpc.pb.h"
#include "server/config.h"

#ifndef HOMEWARD_DEFAULT_WEB_DIR
#define HOMEWARD_DEFAULT_WEB_DIR "web"
#endif

namespace homeward::server {
namespace {

namespace pb = ::homeward::v1;
namespace protoutil = ::google::protobuf::util;
using ::google::protobuf::FieldDescriptor;
using ::google::protobuf::Message;
using Stub = pb::Homeward::Stub;

// Self-only: no inline script or style, images from the API as blob: URLs.
constexpr char kContentSecurityPolicy[] =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'";
constexpr int64_t kJsonSlackBytes = 64 << 10;  // JSON field names around a base64 image

// Google's HTTP mapping of the canonical codes, except RESOURCE_EXHAUSTED: here it always
// means a request or image over a limit (or a full disk), hence 413.
int HttpStatusFor(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return 200;
    case grpc::StatusCode::CANCELLED:
      return 499;
    case grpc::StatusCode::INVALID_ARGUMENT:
      return 400;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return 504;
    case grpc::StatusCode::NOT_FOUND:
      return 404;
    case grpc::StatusCode::ALREADY_EXISTS:
      return 409;
    case grpc::StatusCode::PERMISSION_DENIED:
      return 403;
    case grpc::StatusCode::UNAUTHENTICATED:
      return 401;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return 413;
    case grpc::StatusCode::FAILED_PRECONDITION:
      return 400;
    case grpc::StatusCode::ABORTED:
      return 409;
    case grpc::StatusCode::OUT_OF_RANGE:
      return 400;
    case grpc::StatusCode::UNIMPLEMENTED:
      return 501;
    case grpc::StatusCode::UNAVAILABLE:
      return 503;
    default:
      return 500;  // UNKNOWN, INTERNAL, DATA_LOSS
  }
}

const char* CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    default:
      return "INTERNAL";
  }
}

// The length of the well-formed UTF-8 sequence at s[i] (no overlongs, surrogates or code
// points past U+10FFFF), or 0.
size_t Utf8SequenceAt(absl::string_view s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  const size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  uint32_t cp = n == 1 ? c : c & (0x7F >> n);
  for (size_t k = 1; k < n; ++k) {
    const auto cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3F);
  }
  if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
      cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    return 0;
  }
  return n;
}

bool IsUtf8(absl::string_view s) {
  for (size_t i = 0, n; i < s.size(); i += n) {
    if ((n = Utf8SequenceAt(s, i)) == 0) return false;
  }
  return true;
}

// The first string (not bytes) field of `msg`, at any depth, that is not UTF-8 ("" if none):
// protobuf would refuse to parse such a request, and gRPC answers that with UNIMPLEMENTED.
std::string NonUtf8Field(const Message& msg) {
  const auto* refl = msg.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  refl->ListFields(msg, &fields);
  for (const FieldDescriptor* f : fields) {
    const int n = f->is_repeated() ? refl->FieldSize(msg, f) : 1;
    for (int i = 0; i < n; ++i) {
      if (f->type() == FieldDescriptor::TYPE_STRING) {
        std::string scratch;
        const std::string& v = f->is_repeated() ? refl->GetRepeatedStringReference(msg, f, i, &scratch)
                                                : refl->GetStringReference(msg, f, &scratch);
        if (!IsUtf8(v)) return f->name();
      } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
        std::string inner = NonUtf8Field(f->is_repeated() ? refl->GetRepeatedMessage(msg, f, i)
                                                          : refl->GetMessage(msg, f));
        if (!inner.empty()) return absl::StrCat(f->name(), ".", inner);
      }
    }
  }
  return "";
}

// A JSON string literal; bytes that are not UTF-8 (echoed ids, paths) become U+FFFD so that
// the reply stays valid JSON.
std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size(); ++i) {
    const auto ch = static_cast<unsigned char>(s[i]);
    if (ch >= 0x80) {
      const size_t n = Utf8SequenceAt(s, i);
      if (n == 0) {
        out += "\\ufffd";
      } else {
        out.append(s, i, n);
        i += n - 1;
      }
      continue;
    }
    switch (ch) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (ch < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", ch);
          out += buf;
        } else {
          out += static_cast<char>(ch);
        }
    }
  }
  return out + "\"";
}

void SendError(httplib::Response& res, grpc::StatusCode code, const std::string& message) {
  res.status = HttpStatusFor(code);
  res.set_content(
      absl::StrCat("{\"code\":\"", CodeName(code), "\",\"message\":", JsonString(message), "}"),
      "application/json");
  if (code == grpc::StatusCode::UNAUTHENTICATED) res.set_header("WWW-Authenticate", "Bearer");
  if (code == grpc::StatusCode::UNAVAILABLE) res.set_header("Retry-After", "1");
}

void SendJson(httplib::Response& res, const Message& msg) {
  protoutil::JsonPrintOptions options;
  options.always_print_primitive_fields = true;  // pages need not guess defaults
  std::string json;
  auto st = protoutil::MessageToJsonString(msg, &json, options);
  if (!st.ok()) {
    SendError(res, grpc::StatusCode::INTERNAL, "cannot encode the reply as JSON");
    return;
  }
  res.status = 200;
  res.set_content(json, "application/json");
}

// The media type without parameters, lower case.
std::string MediaType(const httplib::Request& req) {
  std::string type = req.get_header_value("Content-Type");
  type = type.substr(0, type.find(';'));
  return absl::AsciiStrToLower(absl::StripAsciiWhitespace(type));
}

// Sets one field named by a dotted path of proto or JSON names ("a.image", "estimatedAge",
// "top_k") from text: numbers, bools (true/false/1/0/on), enum names, JSON for messages,
// raw bytes for strings and bytes. Repeated strings and enums append.
absl::Status SetField(Message* msg, absl::string_view path, const std::string& value) {
  std::string name(path.substr(0, path.find('.')));
  absl::string_view rest = path.find('.') == absl::string_view::npos
                               ? absl::string_view()
                               : path.substr(path.find('.') + 1);
  const auto* desc = msg->GetDescriptor();
  const auto* refl = msg->GetReflection();
  const FieldDescriptor* f = desc->FindFieldByName(name);
  if (f == nullptr) f = desc->FindFieldByCamelcaseName(name);
  if (f == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown field \"", name, "\" for ", desc->name()));
  }
  if (!rest.empty()) {
    if (f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE || f->is_repeated()) {
      return absl::InvalidArgumentError(absl::StrCat("field \"", name, "\" has no subfields"));
    }
    return SetField(refl->MutableMessage(msg, f), rest, value);
  }
  auto bad = [&](const char* what) {
    return absl::InvalidArgumentError(
        absl::StrCat("field \"", name, "\" must be ", what, ", not \"", value.substr(0, 40), "\""));
  };
  if (f->is_repeated()) {
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
      refl->AddString(msg, f, value);
    } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_ENUM) {
      const auto* ev = f->enum_type()->FindValueByName(value);
      if (ev == nullptr) return bad("an enum name");
      refl->AddEnum(msg, f, ev);
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("field \"", name, "\" cannot be sent as a form field: use JSON"));
    }
    return absl::OkStatus();
  }
  if (value.empty() && f->cpp_type() != FieldDescriptor::CPPTYPE_STRING) {
    return absl::OkStatus();  // an empty form input: the field's default
  }
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      refl->SetString(msg, f, value);
      break;
    case FieldDescriptor::CPPTYPE_INT32: {
      int32_t v;
      if (!absl::SimpleAtoi(value, &v)) return bad("an integer");
      refl->SetInt32(msg, f, v);
      break;
    }
    case FieldDescriptor::CPPTYPE_INT64: {
      int64_t v;
      if (!absl::SimpleAtoi(value, &v)) return bad("an integer");
      refl->SetInt64(msg, f, v);
      break;
    }
    case FieldDescriptor::CPPTYPE_FLOAT: {
      float v;
      if (!absl::SimpleAtof(value, &v)) return bad("a number");
      refl->SetFloat(msg, f, v);
      break;
    }
    case FieldDescriptor::CPPTYPE_DOUBLE: {
      double v;
      if (!absl::SimpleAtod(value, &v)) return bad("a number");
      refl->SetDouble(msg, f, v);
      break;
    }
    case FieldDescriptor::CPPTYPE_BOOL: {
      std::string v = absl::AsciiStrToLower(value);
      if (v != "true" && v != "false" && v != "1" && v != "0" && v != "on" && v != "off") {
        return bad("true or false");
      }
      refl->SetBool(msg, f, v == "true" || v == "1" || v == "on");
      break;
    }
    case FieldDescriptor::CPPTYPE_ENUM: {
      const auto* ev = f->enum_type()->FindValueByName(value);
      int number;
      if (ev == nullptr && absl::SimpleAtoi(value, &number)) {
        ev = f->enum_type()->FindValueByNumber(number);
      }
      if (ev == nullptr) return bad("an enum name");
      refl->SetEnum(msg, f, ev);
      break;
    }
    case FieldDescriptor::CPPTYPE_MESSAGE: {
      auto st = protoutil::JsonStringToMessage(value, refl->MutableMessage(msg, f));
      if (!st.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("field \"", name, "\" must be a JSON object: ", st.ToString()));
      }
      break;
    }
    default:
      return bad("a supported type");
  }
  return absl::OkStatus();
}

// Reads the request body into `msg`: JSON (application/json), or, when `form` is true,
// multipart/form-data whose fields are SetField paths (the file parts' bytes as values).
// An empty body without a Content-Type is an empty message. Answers 400/415 and returns
// false on failure.
bool ReadBody(const httplib::Request& req, httplib::Response& res, Message* msg, bool form) {
  if (req.is_multipart_form_data()) {
    if (!form) {
      SendError(res, grpc::StatusCode::INVALID_ARGUMENT,
                "this route takes Content-Type: application/json");
      res.status = 415;
      return false;
    }
    for (const auto& [field, part] : req.files) {
      if (absl::Status st = SetField(msg, field, part.content); !st.ok()) {
        SendError(res, grpc::StatusCode::INVALID_ARGUMENT,
                  absl::StrCat("form field \"", field, "\": ", st.message()));
        return false;
      }
    }
    return true;
  }
  std::string type = MediaType(req);
  if (req.body.empty() && type.empty()) return true;
  if (type != "application/json") {
    SendError(res, grpc::StatusCode::INVALID_ARGUMENT,
              absl::StrCat("unsupported Content-Type \"", type, "\": send application/json",
                           form ? " or multipart/form-data" : ""));
    res.status = 415;
    return false;
  }
  protoutil::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  auto st = protoutil::JsonStringToMessage(req.body, msg, options);
  if (!st.ok()) {
    SendError(res, grpc::StatusCode::INVALID_ARGUMENT,
              absl::StrCat("malformed JSON body for ", msg->GetDescriptor()->name(), ": ",
                           st.ToString()));
    return false;
  }
  return true;
}

// Query parameters are SetField paths too (GET /v1/cases?kind=MISSING&pageSize=20).
bool ReadQuery(const httplib::Request& req, httplib::Response& res, Message* msg) {
  for (const auto& [key, value] : req.params) {
    if (absl::Status st = SetField(msg, key, value); !st.ok()) {
      SendError(res, grpc::StatusCode::INVALID_ARGUMENT,
                absl::StrCat("query parameter \"", key, "\": ", st.message()));
      return false;
    }
  }
  return true;
}

bool PrintableAscii(const std::string& s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

}  // namespace

class HttpGateway::Impl {
 public:
  Impl(std::shared_ptr<grpc::Channel> channel, const HttpGatewayOptions& options)
      : options_(options), stub_(pb::Homeward::NewStub(std::move(channel))) {}

  absl::Status Start();
  void Shutdown();

  int port_ = 0;
  std::string address_;

 private:
  template <typename Req, typename Resp>
  using Method = grpc::Status (Stub::*)(grpc::ClientContext*, const Req&, Resp*);

  // One gRPC call with the caller's key; answers the error and returns false on failure.
  template <typename Req, typename Resp>
  bool Call(const httplib::Request& hreq, httplib::Response& res, Method<Req, Resp> method,
            const Req& req, Resp* resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::milliseconds(options_.call_timeout_ms));
    std::string auth = hreq.get_header_value("Authorization");
    if (!auth.empty()) {
      if (!PrintableAscii(auth)) {
        SendError(res, grpc::StatusCode::UNAUTHENTICATED,
                  "the Authorization header must read `Bearer <key>`");
        return false;
      }
      ctx.AddMetadata("authorization", auth);
    }
    if (std::string field = NonUtf8Field(req); !field.empty()) {
      SendError(res, grpc::StatusCode::INVALID_ARGUMENT,
                absl::StrCat("field \"", field, "\" is not valid UTF-8 text"));
      return false;
    }
    grpc::Status s = (stub_.get()->*method)(&ctx, req, resp);
    if (!s.ok()) {
      SendError(res, s.error_code(), s.error_message());
      return false;
    }
    return true;
  }

  // A JSON-in, JSON-out route: `fill` may set path parameters on the request.
  template <typename Req, typename Resp>
  httplib::Server::Handler JsonRoute(Method<Req, Resp> method, bool form,
                                     void (*fill)(const httplib::Request&, Req*) = nullptr) {
    return [this, method, form, fill](const httplib::Request& hreq, httplib::Response& res) {
      Req req;
      if (!ReadBody(hreq, res, &req, form)) return;
      if (fill) fill(hreq, &req);
      Resp resp;
      if (Call(hreq, res, method, req, &resp)) SendJson(res, resp);
    };
  }

  void RegisterRoutes();
  void AddCorsHeaders(const httplib::Request& req, httplib::Response& res) const;

  const HttpGatewayOptions options_;
  std::unique_ptr<Stub> stub_;
  httplib::Server http_;
  std::thread thread_;
  absl::Mutex mu_;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

void HttpGateway::Impl::AddCorsHeaders(const httplib::Request& req, httplib::Response& res) const {
  if (options_.cors_origin.empty() || res.has_header("Access-Control-Allow-Origin")) return;
  std::string origin = req.get_header_value("Origin");
  if (origin.empty()) return;
  if (options_.cors_origin != "*" && origin != options_.cors_origin) return;
  res.set_header("Access-Control-Allow-Origin", options_.cors_origin);
  res.set_header("Vary", "Origin");
}

void HttpGateway::Impl::RegisterRoutes() {
  httplib::Headers security = {
      {"Content-Security-Policy", kContentSecurityPolicy},
      {"X-Content-Type-Options", "nosniff"},
      {"Referrer-Policy", "no-referrer"},
      {"X-Frame-Options", "DENY"},
      {"Cache-Control", "no-store"},
  };
  http_.set_default_headers(security);
  http_.set_payload_max_length(
      static_cast<size_t>(options_.max_request_bytes / 3 * 4 + kJsonSlackBytes));

  // CORS preflight for every path.
  http_.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    // httplib enforces the payload limit on Content-Length bodies only: a chunked body, or one
    // read until the connection closes, would be buffered whole. Refuse them before reading.
    const bool has_body_method =
        req.method == "POST" || req.method == "PUT" || req.method == "PATCH";
    if (absl::AsciiStrToLower(req.get_header_value("Transfer-Encoding")).find("chunked") !=
            std::string::npos ||
        (has_body_method && !req.has_header("Content-Length"))) {
      SendError(res, grpc::StatusCode::INVALID_ARGUMENT,
                absl::StrCat("send the body with a Content-Length header (at most ",
                             options_.max_request_bytes / 3 * 4 + kJsonSlackBytes,
                             " bytes); chunked or unsized bodies are not accepted"));
      res.status = 411;
      res.set_header("Connection", "close");
      AddCorsHeaders(req, res);
      return httplib::Server::HandlerResponse::Handled;
    }
    // A NUL in the decoded path would cut the static file name short ("/x.html%00.png").
    if (req.path.find('\0') != std::string::npos) {
      SendError(res, grpc::StatusCode::INVALID_ARGUMENT, "the path holds a NUL byte (%00)");
      AddCorsHeaders(req, res);
      return httplib::Server::HandlerResponse::Handled;
    }
    if (req.method != "OPTIONS") return httplib::Server::HandlerResponse::Unhandled;
    std::string origin = req.get_header_value("Origin");
    res.set_header("Allow", "GET, POST, PUT, PATCH, DELETE, OPTIONS");
    if (!origin.empty()) {
      if (options_.cors_origin.empty() ||
          (options_.cors_origin != "*" && origin != options_.cors_origin)) {
        SendError(res, grpc::StatusCode::PERMISSION_DENIED,
                  absl::StrCat("cross-origin requests from \"", origin,
                               "\" are not allowed (see --cors-origin)"));
        return httplib::Server::HandlerResponse::Handled;
      }
      AddCorsHeaders(req, res);
      res.set_header("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE, OPTIONS");
      res.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type");
      res.set_header("Access-Control-Max-Age", "600");
    }
    res.status = 204;
    return httplib::Server::HandlerResponse::Handled;
  });
  http_.set_post_routing_handler(
      [this](const httplib::Request& req, httplib::Response& res) { AddCorsHeaders(req, res); });
  http_.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 413) {
      SendError(res, grpc::StatusCode::RESOURCE_EXHAUSTED,
                absl::StrCat("the request body is over the limit of ", options_.max_request_bytes,
                             " bytes (images; JSON base64 may be 4/3 "
                             "of that)"));
    } else if (res.status == 404) {
      SendError(res, grpc::StatusCode::NOT_FOUND,
                absl::StrCat("no route ", req.method, " ", req.path, " (see docs/WEB.md)"));
    } else {
      int status = res.status;
      SendError(res, grpc::StatusCode::INVALID_ARGUMENT,
                absl::StrCat("HTTP ", status, " for ", req.method, " ", req.path));
      res.status = status;
    }
    AddCorsHeaders(req, res);
  });
  http_.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
        SendError(res, grpc::StatusCode::INTERNAL, "internal error in the HTTP gateway");
      });

  // Cases.
  http_.Post("/v1/cases", [this](const httplib::Request& hreq, httplib::Response& res) {
    pb::CreateCaseRequest req;
    if (!ReadBody(hreq, res, req.mutable_case_(), false)) return;
    pb::Case resp;
    if (Call(hreq, res, &Stub::CreateCase, req, &resp)) SendJson(res, resp);
  });
  http_.Get("/v1/cases", [this](const httplib::Request& hreq, httplib::Response& res) {
    pb::ListCasesRequest req;
    if (!ReadQuery(hreq, res, &req)) return;
    pb::ListCasesResponse resp;
    if (Call(hreq, res, &Stub::ListCases, req, &resp)) SendJson(res, resp);
  });
  http_.Get(R"(/v1/cases/([^/:]+))", [this](const httplib::Request& hreq, httplib::Response& res) {
    pb::GetCaseRequest req;
    req.set_id(hreq.matches[1]);
    pb::Case resp;
    if (Call(hreq, res, &Stub::GetCase, req, &resp)) SendJson(res, resp);
  });
  // PUT replaces every editable field (UpdateCase); PATCH merges the fields sent into the
  // current case first (a GetCase, then an UpdateCase).
  auto update = [this](bool merge) {
    return [this, merge](const httplib::Request& hreq, httplib::Response& res) {
      pb::Case patch;
      if (!ReadBody(hreq, res, &patch, false)) return;
      std::string id = hreq.matches[1];
      if (!patch.id().empty() && patch.id() != id) {
        SendError(res, grpc::StatusCode::INVALID_ARGUMENT,
                  absl::StrCat("the body's id \"", patch.id(), "\" differs from the path's \"", id,
                               "\""));
        return;
      }
      pb::UpdateCaseRequest req;
      if (merge) {
        pb::GetCaseRequest get;
        get.set_id(id);
        if (!Call(hreq, res, &Stub::GetCase, get, req.mutable_case_())) return;
        req.mutable_case_()->MergeFrom(patch);
      } else {
        *req.mutable_case_() = patch;
      }
      req.mutable_case_()->set_id(id);
      pb::Case resp;
      if (Call(hreq, res, &Stub::UpdateCase, req, &resp)) SendJson(res, resp);
    };
  };
  http_.Put(R"(/v1/cases/([^/:]+))", update(false));
  http_.Patch(R"(/v1/cases/([^/:]+))", update(true));
  http_.Delete(R"(/v1/cases/([^/:]+))",
               [this](const httplib::Request& hreq, httplib::Response& res) {
                 pb::DeleteCaseRequest req;
                 req.set_id(hreq.matches[1]);
                 pb::DeleteCaseResponse resp;
                 if (Call(hreq, res, &Stub::DeleteCase, req, &resp)) SendJson(res, resp);
               });

  // The case's archive (ExportCase): a tar file, as a download.
  http_.Get(R"(/v1/cases/([^/:]+)/export)",
            [this](const httplib::Request& hreq, httplib::Response& res) {
              pb::ExportCaseRequest req;
              req.set_id(hreq.matches[1]);
              pb::ExportCaseResponse resp;
              if (!Call(hreq, res, &Stub::ExportCase, req, &resp)) return;
              res.set_header("Content-Disposition",
                             absl::StrCat("attachment; filename=\"", resp.file_name(), "\""));
              res.set_header("X-Homeward-Photos", absl::StrCat(resp.photos()));
              res.set_content(resp.archive(), "application/x-tar");
            });

  // Photos, sightings, search, compare: JSON (base64 bytes) or multipart/form-data.
  http_.Post(R"(/v1/cases/([^/:]+)/photos)",
             JsonRoute<pb::AddPhotoRequest, pb::AddPhotoResponse>(
                 &Stub::AddPhoto, true, [](const httplib::Request& hreq, pb::AddPhotoRequest* r) {
                   r->set_case_id(hreq.matches[1]);
                 }));
  http_.Post("/v1/sightings", JsonRoute<pb::SubmitSightingRequest, pb::SubmitSightingResponse>(
                                  &Stub::SubmitSighting, true));
  http_.Post("/v1/search", JsonRoute<pb::SearchRequest, pb::SearchResponse>(&Stub::Search, true));
  http_.Post("/v1/compare",
             JsonRoute<pb::CompareRequest, pb::CompareResponse>(&Stub::Compare, true));

  // Image bytes with their content type.
  http_.Get(R"(/v1/photos/([^/:]+))", [this](const httplib::Request& hreq, httplib::Response& res) {
    pb::GetPhotoRequest req;
    req.set_photo_id(hreq.matches[1]);
    pb::GetPhotoResponse resp;
    if (!Call(hreq, res, &Stub::GetPhoto, req, &resp)) return;
    res.set_header("X-Homeward-Case-Id", resp.case_id());
    res.set_content(resp.image(),
                    resp.content_type().empty() ? "application/octet-stream" : resp.content_type());
  });
  http_.Get(R"(/v1/faces/([^/:]+)/crop)",
            [this](const httplib::Request& hreq, httplib::Response& res) {
              pb::GetFaceCropRequest req;
              if (!ReadQuery(hreq, res, &req)) return;
              req.set_face_id(hreq.matches[1]);
              pb::GetFaceCropResponse resp;
              if (!Call(hreq, res, &Stub::GetFaceCrop, req, &resp)) return;
              res.set_header("X-Homeward-Case-Id", resp.case_id());
              res.set_content(resp.png(), "image/png");
            });
  // Prometheus scrapes (server/metrics.h); the key is checked by the service, not by a call.
  http_.Get("/metrics", [this](const httplib::Request& hreq, httplib::Response& res) {
    if (!options_.metrics) {
      SendError(res, grpc::StatusCode::NOT_FOUND, "this server serves no metrics");
      return;
    }
    const std::string header = hreq.get_header_value("Authorization");
    std::optional<absl::string_view> authorization;
    if (hreq.has_header("Authorization")) authorization = header;
    absl::StatusOr<std::string> page = options_.metrics(authorization);
    if (!page.ok()) {
      SendError(res, static_cast<grpc::StatusCode>(page.status().code()),
                std::string(page.status().message()));
      return;
    }
    res.set_content(*page, "text/plain; version=0.0.4; charset=utf-8");
  });
  http_.Get("/v1/stats", [this](const httplib::Request& hreq, httplib::Response& res) {
    pb::GetStatsRequest req;
    pb::GetStatsResponse resp;
    if (Call(hreq, res, &Stub::GetStats, req, &resp)) SendJson(res, resp);
  });

  // Leads (investigators and admins).
  http_.Get("/v1/leads", [this](const httplib::Request& hreq, httplib::Response& res) {
    pb::ListLeadsRequest req;
    if (!ReadQuery(hreq, res, &req)) return;
    pb::ListLeadsResponse resp;
    if (Call(hreq, res, &Stub::ListLeads, req, &resp)) SendJson(res, resp);
  });
  http_.Get(R"(/v1/leads/([^/:]+))", [this](const httplib::Request& hreq, httplib::Response& res) {
    pb::GetLeadRequest req;
    req.set_id(hreq.matches[1]);
    pb::Lead resp;
    if (Call(hreq, res, &Stub::GetLead, req, &resp)) SendJson(res, resp);
  });
  http_.Post(
      R"(/v1/leads/([^/:]+):review)",
      JsonRoute<pb::ReviewLeadRequest, pb::Lead>(
          &Stub::ReviewLead, false, [](const httplib::Request& hreq, pb::ReviewLeadRequest* r) {
            r->set_id(hreq.matches[1]);
          }));

  std::string web_dir = options_.web_dir.empty() ? HOMEWARD_DEFAULT_WEB_DIR : options_.web_dir;
  std::error_code ec;
  if (std::filesystem::is_directory(web_dir, ec)) {
    http_.set_mount_point("/", web_dir);
    http_.set_file_extension_and_mimetype_mapping("js", "text/javascript");
  } else {
    spdlog::warn("no web pages: {} is not a directory (the JSON API is served)", web_dir);
  }
}

absl::Status HttpGateway::Impl::Start() {
  const std::string& listen = options_.listen;
  size_t colon = listen.rfind(':');
  int port = -1;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(listen.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--http-listen \"", listen, "\" is not HOST:PORT (e.g. 127.0.0.1:8080, [::1]:0)"));
  }
  std::string host = ListenHost(listen);
  RegisterRoutes();
  if (port == 0) {
    port = http_.bind_to_any_port(host);
    if (port < 0) port = 0;
  } else if (!http_.bind_to_port(host, port)) {
    port = 0;
  }
  if (port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on --http-listen ", listen,
                                               ": the address is in use or not local"));
  }
  port_ = port;
  address_ = absl::StrCat(listen.substr(0, colon), ":", port);
  thread_ = std::thread([this] { http_.listen_after_bind(); });
  // stop() is a no-op until the loop runs: wait for it so that Shutdown cannot hang.
  for (int i = 0; i < 5000 && !http_.is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return absl::OkStatus();
}

void HttpGateway::Impl::Shutdown() {
  absl::MutexLock lock(&mu_);
  if (shut_down_) return;
  shut_down_ = true;
  http_.stop();
  if (thread_.joinable()) thread_.join();
}

absl::StatusOr<std::unique_ptr<HttpGateway>> HttpGateway::Start(
    std::shared_ptr<grpc::Channel> channel, const HttpGatewayOptions& options) {
  auto impl = std::make_unique<Impl>(std::move(channel), options);
  if (absl::Status st = impl->Start(); !st.ok()) return st;
  return std::unique_ptr<HttpGateway>(new HttpGateway(std::move(impl)));
}

HttpGateway::HttpGateway(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpGateway::~HttpGateway() { Shutdown(); }
void HttpGateway::Shutdown() { impl_->Shutdown(); }
int HttpGateway::port() const { return impl_->port_; }
const std::string& HttpGateway::address() const { return impl_->address_; }

}  // namespace homeward::server
