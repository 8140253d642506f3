#include <gtest/gtest.h>

#include "common/ip.h"
#include "common/observation.h"
#include "common/status.h"

namespace teiten {
namespace {

TEST(IpAddr, ParsesAndFormatsBothFamilies) {
  auto a = IpAddr::Parse("192.0.2.7");
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->is_v4());
  EXPECT_EQ(a->v4(), 0xC0000207u);
  EXPECT_EQ(a->ToString(), "192.0.2.7");
  auto b = IpAddr::Parse("2001:db8::1");
  ASSERT_TRUE(b);
  EXPECT_FALSE(b->is_v4());
  EXPECT_EQ(b->ToString(), "2001:db8::1");
  EXPECT_FALSE(IpAddr::Parse("300.1.1.1"));
  EXPECT_FALSE(IpAddr::Parse(""));
  EXPECT_FALSE(IpAddr::Parse("1.2.3.4/24"));
}

TEST(Prefix, ContainsRespectsLengthAndFamily) {
  auto p = Prefix::Parse("192.0.2.77/24");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->ToString(), "192.0.2.0/24");
  EXPECT_TRUE(p->Contains(*IpAddr::Parse("192.0.2.255")));
  EXPECT_FALSE(p->Contains(*IpAddr::Parse("192.0.3.0")));
  EXPECT_FALSE(p->Contains(*IpAddr::Parse("2001:db8::c000:207")));
  auto q = Prefix::Parse("10.0.0.0/9");
  EXPECT_TRUE(q->Contains(*IpAddr::Parse("10.127.255.255")));
  EXPECT_FALSE(q->Contains(*IpAddr::Parse("10.128.0.0")));
  auto v6 = Prefix::Parse("2001:db8:80::/41");
  EXPECT_TRUE(v6->Contains(*IpAddr::Parse("2001:db8:ff::1")));
  EXPECT_FALSE(v6->Contains(*IpAddr::Parse("2001:db8:7f::1")));
  EXPECT_FALSE(Prefix::Parse("192.0.2.0/33"));
  EXPECT_FALSE(Prefix::Parse("192.0.2.0/"));
}

TEST(PortKey, RoundTripsTheSeedsNotation) {
  PortKey k;
  ASSERT_TRUE(ParsePortKey("53413/UDP", &k));
  EXPECT_EQ(PortKeyToString(k), "53413/UDP");
  ASSERT_TRUE(ParsePortKey("icmp", &k));
  EXPECT_EQ(PortKeyToString(k), "0/ICMP");
  EXPECT_FALSE(ParsePortKey("70000/tcp", &k));
  EXPECT_FALSE(ParsePortKey("23/xyz", &k));
  Observation frag;
  frag.proto = 17;
  frag.flags = obs_flag::kFragment;
  EXPECT_EQ(PortKeyToString(PortKeyOf(frag)), "UDP/-");
}

TEST(Status, CarriesCodeAndMessage) {
  Status s = InvalidArgument("sensors.toml:3: key 'mode': expected darknet or host");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.ToString(), "invalid argument: sensors.toml:3: key 'mode': expected darknet or host");
}

}  // namespace
}  // namespace teiten
