package broker

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/creek-pipeline/creek/internal/cluster"
	"github.com/creek-pipeline/creek/internal/config"
	"github.com/creek-pipeline/creek/internal/share"
)

func handleDescribeConfigs(b *Broker, r *request, req *kmsg.DescribeConfigsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewDescribeConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		var err error
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			if err = cluster.ValidateTopicName(rr.ResourceName); err != nil {
				break
			}
			t, ok := b.cluster.Topic(rr.ResourceName)
			if !ok {
				err = fmt.Errorf("%w: %s", kerr.UnknownTopicOrPartition, rr.ResourceName)
				break
			}
			for _, c := range config.ResolveTopic(t.Configs(), b.cluster.Broker()) {
				if rr.ConfigNames != nil && !slices.Contains(rr.ConfigNames, c.Name) {
					continue
				}
				sr.Configs = append(sr.Configs, b.describeTopicConfig(req, c))
			}
		case kmsg.ConfigResourceTypeBroker:
			if err = b.checkBrokerResource(rr.ResourceName); err != nil {
				break
			}
			for _, s := range config.BrokerSettings.All() {
				if rr.ConfigNames != nil && !slices.Contains(rr.ConfigNames, s.Name) {
					continue
				}
				value, source := b.cluster.Broker().Get(s.Name)
				sc := newConfigEntry(req, s, value, source)
				sc.ReadOnly = true
				if req.IncludeSynonyms {
					sc.ConfigSynonyms = append(sc.ConfigSynonyms, synonym(s.Name, value, source))
				}
				sr.Configs = append(sr.Configs, sc)
			}
		case kmsg.ConfigResourceTypeGroupConfig:
			if rr.ConfigNames != nil && !slices.Contains(rr.ConfigNames, share.AutoOffsetReset) {
				break
			}
			value, set := b.shares.GroupConfig(rr.ResourceName, share.AutoOffsetReset)
			sc := kmsg.NewDescribeConfigsResponseResourceConfig()
			sc.Name, sc.Value, sc.ConfigType = share.AutoOffsetReset, kmsg.StringPtr(value), kmsg.ConfigTypeString
			sc.Source, sc.IsDefault = kmsg.ConfigSourceDefaultConfig, !set
			if set {
				sc.Source = kmsg.ConfigSourceGroupConfig
			}
			if req.IncludeDocumentation {
				sc.Documentation = kmsg.StringPtr("Where a share group starts reading a partition it has no position in: latest or earliest.")
			}
			sr.Configs = append(sr.Configs, sc)
		default:
			err = fmt.Errorf("%w: resource type %d has no configs here (topics: 2, brokers: 4, groups: 32)", kerr.InvalidRequest, rr.ResourceType)
		}
		sr.ErrorCode, sr.ErrorMessage = errorCode(err), errorMessage(err)
		resp.Resources = append(resp.Resources, sr)
	}
	return resp
}

func newConfigEntry(req *kmsg.DescribeConfigsRequest, s *config.Setting, value string, source config.Source) kmsg.DescribeConfigsResponseResourceConfig {
	sc := kmsg.NewDescribeConfigsResponseResourceConfig()
	sc.Name, sc.Value = s.Name, stringPtr(value)
	sc.Source = configSource(source)
	sc.IsDefault = source == config.SourceDefault
	sc.ConfigType = configType(s.Type)
	if req.IncludeDocumentation {
		sc.Documentation = stringPtr(s.Doc)
	}
	return sc
}

// describeTopicConfig reports a topic config with its synonyms: the topic
// override, then the broker setting it defaults to, then the built-in default.
func (b *Broker) describeTopicConfig(req *kmsg.DescribeConfigsRequest, c config.ResolvedTopicConfig) kmsg.DescribeConfigsResponseResourceConfig {
	sc := newConfigEntry(req, &c.Setting, c.Value, c.Source)
	if !req.IncludeSynonyms {
		return sc
	}
	if c.Source == config.SourceDynamicTopic {
		sc.ConfigSynonyms = append(sc.ConfigSynonyms, synonym(c.Name, c.Value, c.Source))
	}
	if v, src := b.cluster.Broker().Get(c.BrokerName); src == config.SourceStaticBroker {
		sc.ConfigSynonyms = append(sc.ConfigSynonyms, synonym(c.BrokerName, v, src))
	}
	sc.ConfigSynonyms = append(sc.ConfigSynonyms, synonym(c.BrokerName, c.Default, config.SourceDefault))
	return sc
}

func synonym(name, value string, source config.Source) kmsg.DescribeConfigsResponseResourceConfigConfigSynonym {
	s := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
	s.Name, s.Value, s.Source = name, stringPtr(value), configSource(source)
	return s
}

func configType(t config.Type) kmsg.ConfigType {
	switch t {
	case config.Int:
		return kmsg.ConfigTypeInt
	case config.Long:
		return kmsg.ConfigTypeLong
	case config.Bool:
		return kmsg.ConfigTypeBoolean
	case config.List:
		return kmsg.ConfigTypeList
	case config.Double:
		return kmsg.ConfigTypeDouble
	default:
		return kmsg.ConfigTypeString
	}
}

// checkBrokerResource accepts the broker's own node id, or "" for the
// cluster-wide defaults.
func (b *Broker) checkBrokerResource(name string) error {
	if name == "" || name == strconv.Itoa(int(b.nodeID)) {
		return nil
	}
	return fmt.Errorf("%w: broker %q does not exist; this broker is %d", kerr.InvalidRequest, name, b.nodeID)
}

var errStaticBrokerConfig = fmt.Errorf("%w: broker settings cannot change while the broker runs; set them with flags, CREEK_* variables or the YAML file and restart", kerr.InvalidRequest)

// configResource is a resource of AlterConfigs and IncrementalAlterConfigs.
type configResource struct {
	kind kmsg.ConfigResourceType
	name string
}

func handleAlterConfigs(b *Broker, r *request, req *kmsg.AlterConfigsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	twice := listedTwice(req.Resources, func(rr kmsg.AlterConfigsRequestResource) configResource {
		return configResource{rr.ResourceType, rr.ResourceName}
	})
	for _, rr := range req.Resources {
		sr := kmsg.NewAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		var err error
		switch {
		case twice[configResource{rr.ResourceType, rr.ResourceName}]:
			err = errListedTwice("resource " + rr.ResourceName)
		case rr.ResourceType == kmsg.ConfigResourceTypeTopic:
			if err = cluster.ValidateTopicName(rr.ResourceName); err != nil {
				break
			}
			overrides := map[string]string{}
			for _, c := range rr.Configs {
				if c.Value != nil {
					overrides[c.Name] = *c.Value
				}
			}
			err = b.cluster.SetTopicConfigs(rr.ResourceName, overrides, req.ValidateOnly)
		case rr.ResourceType == kmsg.ConfigResourceTypeBroker:
			if err = b.checkBrokerResource(rr.ResourceName); err == nil {
				err = errStaticBrokerConfig
			}
		default:
			err = fmt.Errorf("%w: resource type %d cannot be altered", kerr.InvalidRequest, rr.ResourceType)
		}
		sr.ErrorCode, sr.ErrorMessage = errorCode(err), errorMessage(err)
		resp.Resources = append(resp.Resources, sr)
	}
	return resp
}

func handleIncrementalAlterConfigs(b *Broker, r *request, req *kmsg.IncrementalAlterConfigsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	twice := listedTwice(req.Resources, func(rr kmsg.IncrementalAlterConfigsRequestResource) configResource {
		return configResource{rr.ResourceType, rr.ResourceName}
	})
	for _, rr := range req.Resources {
		sr := kmsg.NewIncrementalAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		var err error
		switch {
		case twice[configResource{rr.ResourceType, rr.ResourceName}]:
			err = errListedTwice("resource " + rr.ResourceName)
		case rr.ResourceType == kmsg.ConfigResourceTypeTopic:
			err = b.incrementalAlterTopic(rr, req.ValidateOnly)
		case rr.ResourceType == kmsg.ConfigResourceTypeBroker:
			if err = b.checkBrokerResource(rr.ResourceName); err == nil {
				err = errStaticBrokerConfig
			}
		case rr.ResourceType == kmsg.ConfigResourceTypeGroupConfig:
			for _, c := range rr.Configs {
				value := c.Value
				switch c.Op {
				case kmsg.IncrementalAlterConfigOpSet:
				case kmsg.IncrementalAlterConfigOpDelete:
					value = nil
				default:
					err = fmt.Errorf("%w: %s is not a list; use SET or DELETE", kerr.InvalidConfig, c.Name)
				}
				if err == nil {
					err = b.shares.SetGroupConfig(rr.ResourceName, c.Name, value, req.ValidateOnly)
				}
				if err != nil {
					break
				}
			}
		default:
			err = fmt.Errorf("%w: resource type %d cannot be altered", kerr.InvalidRequest, rr.ResourceType)
		}
		sr.ErrorCode, sr.ErrorMessage = errorCode(err), errorMessage(err)
		resp.Resources = append(resp.Resources, sr)
	}
	return resp
}

// incrementalAlterTopic applies SET, DELETE, APPEND and SUBTRACT operations
// to a topic's overrides (APPEND and SUBTRACT only to list configs).
func (b *Broker) incrementalAlterTopic(rr kmsg.IncrementalAlterConfigsRequestResource, validateOnly bool) error {
	if err := cluster.ValidateTopicName(rr.ResourceName); err != nil {
		return err
	}
	t, ok := b.cluster.Topic(rr.ResourceName)
	if !ok {
		return fmt.Errorf("%w: %s", kerr.UnknownTopicOrPartition, rr.ResourceName)
	}
	overrides := t.Configs()
	for _, c := range rr.Configs {
		tc, ok := config.TopicConfigs.Topic(c.Name)
		if !ok {
			return fmt.Errorf("%w: %v", kerr.InvalidConfig, config.TopicConfigs.UnknownError("topic config", c.Name))
		}
		value := ""
		if c.Value != nil {
			value = *c.Value
		}
		switch c.Op {
		case kmsg.IncrementalAlterConfigOpSet:
			overrides[c.Name] = value
		case kmsg.IncrementalAlterConfigOpDelete:
			delete(overrides, c.Name)
		case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
			if tc.Type != config.List {
				return fmt.Errorf("%w: %s is not a list; APPEND and SUBTRACT work on lists only", kerr.InvalidConfig, c.Name)
			}
			current := strings.Split(config.TopicString(c.Name, overrides, b.cluster.Broker()), ",")
			for _, v := range strings.Split(value, ",") {
				i := slices.Index(current, v)
				if c.Op == kmsg.IncrementalAlterConfigOpAppend && i < 0 {
					current = append(current, v)
				} else if c.Op == kmsg.IncrementalAlterConfigOpSubtract && i >= 0 {
					current = slices.Delete(current, i, i+1)
				}
			}
			overrides[c.Name] = strings.Join(current, ",")
		default:
			return fmt.Errorf("%w: unknown operation %d on %s", kerr.InvalidRequest, c.Op, c.Name)
		}
	}
	return b.cluster.SetTopicConfigs(rr.ResourceName, overrides, validateOnly)
}
