// The beanstalkd command line parser against beanstalkd 1.12's own behaviour (each case
// was checked against Debian's beanstalkd; tests/integration/test_beanstalk.py compares
// the two servers over the wire).
#include "beanstalk/command.h"

#include <gtest/gtest.h>

#include <string>

namespace conveyor::beanstalk {
namespace {

CommandKind KindOf(std::string_view line) { return ParseCommand(line).kind; }

TEST(BeanstalkCommand, CommandsAreMatchedByPrefixInBeanstalkdsOrder) {
  EXPECT_EQ(KindOf("delete"), CommandKind::kUnknown);  // the prefix has a trailing space
  EXPECT_EQ(KindOf("delete "), CommandKind::kBadFormat);
  EXPECT_EQ(KindOf("reserve-job"), CommandKind::kBadFormat);  // matches "reserve"
  EXPECT_EQ(KindOf("reservex"), CommandKind::kBadFormat);
  EXPECT_EQ(KindOf("stats-job"), CommandKind::kBadFormat);  // matches "stats"
  EXPECT_EQ(KindOf("list-tubes "), CommandKind::kBadFormat);
  EXPECT_EQ(KindOf("quitx"), CommandKind::kQuit);
  EXPECT_EQ(KindOf("PUT 0 0 1 1"), CommandKind::kUnknown);
  EXPECT_EQ(KindOf(""), CommandKind::kUnknown);
  EXPECT_EQ(KindOf("peek\t1"), CommandKind::kUnknown);
  EXPECT_EQ(KindOf("reserve"), CommandKind::kReserve);
  EXPECT_EQ(KindOf("list-tubes-watched"), CommandKind::kListTubesWatched);
  EXPECT_EQ(KindOf(std::string("use a\0b", 7)), CommandKind::kBadFormat);
}

TEST(BeanstalkCommand, PutTakesFourUnsignedNumbersAndNotesTrailingBytes) {
  Command c = ParseCommand("put  1  0  1  5");
  ASSERT_EQ(c.kind, CommandKind::kPut);
  EXPECT_EQ(c.pri, 1u);
  EXPECT_EQ(c.ttr, 1u);
  EXPECT_EQ(c.bytes, 5u);
  EXPECT_FALSE(c.put_trailing);
  EXPECT_EQ(KindOf("put -1 0 1 1"), CommandKind::kBadFormat);
  EXPECT_EQ(KindOf("put +1 0 1 1"), CommandKind::kBadFormat);
  EXPECT_EQ(KindOf("put 0 4294967296 1 1"), CommandKind::kBadFormat);
  EXPECT_EQ(KindOf("put 1 0 1"), CommandKind::kBadFormat);
  EXPECT_EQ(ParseCommand("put 4294967295 0 1 1").pri, 4294967295u);
  // Trailing bytes are found after the size, which beanstalkd checks first.
  Command junk = ParseCommand("put 1 0 1 70000x");
  EXPECT_EQ(junk.kind, CommandKind::kPut);
  EXPECT_TRUE(junk.put_trailing);
  EXPECT_EQ(junk.bytes, 70000u);
}

TEST(BeanstalkCommand, IdsAreUnsigned64BitAndTheLastArgumentEndsTheLine) {
  EXPECT_EQ(ParseCommand("peek 01").id, 1u);
  EXPECT_EQ(ParseCommand("delete 18446744073709551615").id, 18446744073709551615u);
  EXPECT_EQ(KindOf("delete 18446744073709551616"), CommandKind::kBadFormat);
  EXPECT_EQ(KindOf("peek 1 "), CommandKind::kBadFormat);
  EXPECT_EQ(KindOf("touch 111a"), CommandKind::kBadFormat);
  EXPECT_EQ(KindOf("delete 1 2"), CommandKind::kBadFormat);
  Command r = ParseCommand("release 7 3 10");
  EXPECT_EQ(r.kind, CommandKind::kRelease);
  EXPECT_EQ(r.id, 7u);
  EXPECT_EQ(r.pri, 3u);
  EXPECT_EQ(r.delay, 10u);
  EXPECT_EQ(KindOf("bury 111"), CommandKind::kBadFormat);
}

TEST(BeanstalkCommand, ReserveWithTimeoutIsLenientAsIn112) {
  EXPECT_EQ(ParseCommand("reserve-with-timeout 5").timeout, 5);
  EXPECT_EQ(ParseCommand("reserve-with-timeout abc").timeout, 0);
  EXPECT_EQ(ParseCommand("reserve-with-timeout 1x").timeout, 1);
  EXPECT_EQ(ParseCommand("reserve-with-timeout -3").timeout, -1);
  EXPECT_EQ(ParseCommand("reserve-with-timeout 4294967296").timeout, 0);
  EXPECT_EQ(ParseCommand("reserve-with-timeout 4294967295").timeout, -1);
  EXPECT_EQ(KindOf("reserve-with-timeout 99999999999999999999"), CommandKind::kBadFormat);
}

TEST(BeanstalkCommand, KickReadsItsBoundLikeStrtoul) {
  EXPECT_EQ(ParseCommand("kick 5x").bound, 5u);
  EXPECT_EQ(ParseCommand("kick -1").bound, 4294967295u);
  EXPECT_EQ(ParseCommand("kick 4294967296").bound, 0u);
  EXPECT_EQ(KindOf("kick x"), CommandKind::kBadFormat);
}

TEST(BeanstalkCommand, TubeNamesAreTheRestOfTheLineAndMustAlsoBeQueueNames) {
  EXPECT_EQ(ParseCommand("use foo").tube, "foo");
  EXPECT_EQ(KindOf("use  foo"), CommandKind::kBadFormat);
  EXPECT_EQ(KindOf("use foo "), CommandKind::kBadFormat);
  EXPECT_EQ(KindOf("watch a b"), CommandKind::kBadFormat);
  EXPECT_EQ(KindOf("use -foo"), CommandKind::kBadFormat);
  EXPECT_EQ(KindOf("use a*b"), CommandKind::kBadFormat);
  // beanstalkd allows + / ; $ ( ) in names; a queue name does not (docs/API.md).
  EXPECT_TRUE(IsBeanstalkTubeName("f-o+o/;.$_()"));
  EXPECT_EQ(KindOf("use f+o"), CommandKind::kBadFormat);
  EXPECT_EQ(KindOf("use " + std::string(128, 'a')), CommandKind::kUse);
  EXPECT_EQ(KindOf("use " + std::string(129, 'a')), CommandKind::kBadFormat);
  Command p = ParseCommand("pause-tube  default  30");
  EXPECT_EQ(p.kind, CommandKind::kPauseTube);
  EXPECT_EQ(p.tube, "default");
  EXPECT_EQ(p.delay, 30u);
  EXPECT_EQ(KindOf("pause-tube default 0 "), CommandKind::kBadFormat);
  EXPECT_EQ(KindOf("pause-tube default"), CommandKind::kBadFormat);
}

}  // namespace
}  // namespace conveyor::beanstalk
