// Push delivery's pure parts: the Standard Webhooks signature, what an answer means for
// its task (verdict), Retry-After, and the circuit breaker on a manual clock.
#include <gtest/gtest.h>

#include "push/breaker.h"
#include "push/signature.h"
#include "push/verdict.h"

namespace conveyor {
namespace {

TEST(PushSignatureTest, MatchesTheStandardWebhooksExample) {
  std::string why;
  auto key = SigningKeyOf("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", why);
  ASSERT_TRUE(key.has_value()) << why;
  EXPECT_EQ(key->size(), 24u);
  EXPECT_EQ(WebhookSignature(*key, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330",
                             "{\"test\": 2432232314}"),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  EXPECT_TRUE(SigningKeyOf("a plain secret of some length", why).has_value());
  EXPECT_FALSE(SigningKeyOf("short", why).has_value());
  EXPECT_FALSE(SigningKeyOf("whsec_not base64!", why).has_value());
  EXPECT_FALSE(SigningKeyOf("whsec_YWJj", why).has_value());  // 3 bytes: too short a key
}

HttpAnswer Answer(int status, std::string body = {}, std::vector<HttpHeader> headers = {}) {
  HttpAnswer a;
  a.status = status;
  a.body = std::move(body);
  a.headers = std::move(headers);
  return a;
}

HttpAnswer Failure(HttpFailure failure) {
  HttpAnswer a;
  a.failure = failure;
  a.error = "boom";
  return a;
}

TEST(PushVerdictTest, EachAnswerHasItsMeaning) {
  PushConfig config;
  config.url = "http://hooks.test/in";
  const int64_t now = 1'700'000'000'000;
  Verdict v = Judge(Answer(200, R"({"ok":1})"), config, now);
  EXPECT_EQ(v.kind, VerdictKind::kAck);
  EXPECT_EQ(v.result, R"({"ok":1})");
  EXPECT_EQ(Judge(Answer(204, "not json"), config, now).result, "");
  v = Judge(Answer(500, "down"), config, now);
  EXPECT_EQ(v.kind, VerdictKind::kRetry);
  EXPECT_TRUE(v.endpoint_failed);
  EXPECT_NE(v.message.find("answered 500: down"), std::string::npos);
  EXPECT_TRUE(Judge(Answer(408), config, now).endpoint_failed);
  v = Judge(Answer(302, "", {{"Location", "http://elsewhere/"}}), config, now);
  EXPECT_EQ(v.kind, VerdictKind::kRetry);
  EXPECT_NE(v.message.find("redirects are not followed"), std::string::npos);
  v = Judge(Answer(404), config, now);
  EXPECT_EQ(v.kind, VerdictKind::kRetry);
  EXPECT_FALSE(v.endpoint_failed);
  config.dead_on_4xx = true;
  EXPECT_EQ(Judge(Answer(422), config, now).kind, VerdictKind::kDead);
  EXPECT_EQ(Judge(Answer(408), config, now).kind, VerdictKind::kRetry);
  EXPECT_EQ(Judge(Answer(429), config, now).kind, VerdictKind::kRetry);  // no Retry-After
  v = Judge(Answer(429, "", {{"retry-after", "7"}}), config, now);
  EXPECT_EQ(v.kind, VerdictKind::kDefer);
  EXPECT_EQ(v.defer_ms, 7000);
  EXPECT_FALSE(v.endpoint_failed);
  EXPECT_EQ(Judge(Answer(503, "", {{"Retry-After", "1"}}), config, now).kind, VerdictKind::kDefer);
  v = Judge(Failure(HttpFailure::kTimeout), config, now);
  EXPECT_EQ(v.kind, VerdictKind::kRetry);
  EXPECT_TRUE(v.endpoint_failed);
  EXPECT_EQ(Judge(Failure(HttpFailure::kClosed), config, now).kind, VerdictKind::kAbandon);
}

TEST(PushVerdictTest, RetryAfterIsSecondsOrADateAndBounded) {
  const int64_t now = 784111777000;  // Sun, 06 Nov 1994 08:49:37 GMT
  EXPECT_EQ(RetryAfterMs("120", now), 120000);
  EXPECT_EQ(RetryAfterMs(" 0 ", now), 0);
  EXPECT_EQ(RetryAfterMs("99999999999999999999", now), kMaxRetryAfterMs);
  EXPECT_EQ(RetryAfterMs("Sun, 06 Nov 1994 08:50:37 GMT", now), 60000);
  EXPECT_EQ(RetryAfterMs("Sun, 06 Nov 1994 08:00:00 GMT", now), 0);  // past
  EXPECT_FALSE(RetryAfterMs("", now).has_value());
  EXPECT_FALSE(RetryAfterMs("-1", now).has_value());
  EXPECT_FALSE(RetryAfterMs("1.5", now).has_value());
  EXPECT_FALSE(RetryAfterMs("soon", now).has_value());
}

TEST(CircuitBreakerTest, OpensAfterFailuresProbesOnceAndClosesOnSuccess) {
  CircuitBreaker b;
  b.Configure(3, 1000);
  int64_t t = 0;
  EXPECT_TRUE(b.Allow(t));
  b.OnFailure(t);
  b.OnFailure(t);
  EXPECT_EQ(b.state(), CircuitBreaker::State::kClosed);
  b.OnSuccess();  // consecutive failures only
  b.OnFailure(t);
  b.OnFailure(t);
  b.OnFailure(t);
  EXPECT_EQ(b.state(), CircuitBreaker::State::kOpen);
  EXPECT_EQ(b.times_opened(), 1u);
  EXPECT_FALSE(b.Allow(t + 999));
  EXPECT_EQ(b.probe_at(), 1000);
  EXPECT_TRUE(b.Allow(t + 1000));  // the probe
  EXPECT_EQ(b.state(), CircuitBreaker::State::kHalfOpen);
  EXPECT_FALSE(b.Allow(t + 1000));  // one probe at a time
  b.OnFailure(t + 1100);            // the probe failed: open again
  EXPECT_EQ(b.state(), CircuitBreaker::State::kOpen);
  EXPECT_FALSE(b.Allow(t + 2000));
  EXPECT_TRUE(b.Allow(t + 2100));
  b.OnAbandoned();  // the probe found nothing to deliver: another may go
  EXPECT_TRUE(b.Allow(t + 2100));
  b.OnSuccess();
  EXPECT_EQ(b.state(), CircuitBreaker::State::kClosed);
  EXPECT_TRUE(b.Allow(t + 2100));
  CircuitBreaker never;
  never.Configure(0, 1000);
  for (int i = 0; i < 100; ++i) never.OnFailure(i);
  EXPECT_EQ(never.state(), CircuitBreaker::State::kClosed);
}

}  // namespace
}  // namespace conveyor
