//! The privacy check of a camera's pipeline template: an allow-list of what a capture pipeline may hold.
//!
//! A camera pipeline exists to hand raw frames to iobox's own `appsink name=frames`, where the blur is the
//! first thing that touches them. Any element that can write, send or expose data elsewhere (a file or
//! network sink, `tee`, `shmsink`, `interpipesink`, an encoder, `identity dump=true`, `queue2` with a temp
//! file, `uridecodebin download=true`) would let raw video out before the blur. The template is therefore
//! parsed and every element in it (inside bins too) must be one that only reads a source or transforms
//! video on its way to `frames`:
//!
//! - by name: [`ALLOWED_FACTORIES`] (sources, queues, converters, decode bins, the `frames` appsink);
//! - by class: decoders, demuxers, parsers and RTP depayloaders, and camera, network and file *sources*
//!   (GStreamer's element classes `Codec/Decoder`, `Codec/Demuxer`, `Codec/Parser`, `Codec/Depayloader`,
//!   `Source/Video`, `Source/Network`, `Source/File`), never anything whose class names a sink, an encoder
//!   or a payloader.
//!
//! Elements that `decodebin` plugs later are decoders, demuxers and parsers, which the same classes allow.

use gstreamer as gst;
use gstreamer::prelude::*;

/// Elements allowed by factory name.
pub const ALLOWED_FACTORIES: &[&str] = &[
    "appsink", // only as `frames`, checked below
    "capsfilter",
    "decodebin",
    "decodebin3",
    "deinterlace",
    "filesrc",
    "multiqueue",
    "parsebin",
    "queue",
    "rtpjitterbuffer",
    "rtspsrc",
    "uridecodebin",
    "uridecodebin3",
    "v4l2src",
    "videobalance",
    "videobox",
    "videoconvert",
    "videoconvertscale",
    "videocrop",
    "videoflip",
    "videorate",
    "videoscale",
    "videotestsrc",
];

/// Element classes (a prefix of the factory's `klass`) allowed for elements not named above.
pub const ALLOWED_CLASSES: &[&str] = &[
    "Codec/Decoder",
    "Codec/Demuxer",
    "Codec/Parser",
    "Codec/Depayloader",
    "Source/Video",
    "Source/Network",
    "Source/File",
];

/// Words that refuse an element whatever else its class says.
const REFUSED_CLASS_WORDS: &[&str] = &["Sink", "Encoder", "Payloader", "Muxer"];

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot parse: {0}")]
    Parse(String),
    #[error("the description must be a pipeline of several elements")]
    NotAPipeline,
    #[error(
        "element `{element}` ({factory}, class {class}) is not allowed in a camera pipeline: {why}. A camera pipeline may only read a source and convert video for `appsink name=frames`; see pipelines/README.md"
    )]
    Refused { element: String, factory: String, class: String, why: &'static str },
    #[error("a camera pipeline has exactly one appsink, named `frames`; found {0}")]
    Appsinks(String),
}

/// The words of a launch description outside quotes, with `!`, `(` and `)` as words of their own.
fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                word.push(c);
                if let Some(n) = chars.next() {
                    word.push(n);
                }
            }
            '"' => {
                quoted = !quoted;
                word.push(c);
            }
            c if !quoted && (c.is_whitespace() || "!()".contains(c)) => {
                if !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
                if c != ' ' && !c.is_whitespace() {
                    out.push(c.to_string());
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// Checks the text before GStreamer's parser sees it: every bare word that names an element (not a
/// property `key=value`, a reference `name.` or `name.pad`, caps `media/type,...`, or a bin's `(`/`)`) must
/// be an installed element on the allow-list, and no two elements may have one name. GStreamer 1.22's
/// parser can crash the process on descriptions with several missing elements and dangling references
/// (SIGSEGV), and recurse without end linking a graph that loops back through a duplicated name (a stack
/// overflow); a hostile template must not get that far.
fn known_elements(text: &str) -> Result<(), TemplateError> {
    let mut names = std::collections::HashSet::new();
    let words = words(text);
    for (i, w) in words.iter().cloned().enumerate() {
        if let Some(name) = w.strip_prefix("name=") {
            if !names.insert(name.trim_matches('"').to_string()) {
                return Err(TemplateError::Parse(format!("two elements are named \"{name}\"")));
            }
            continue;
        }
        let bare = !w.contains('=') && !w.contains('.') && !w.contains('/') && !w.contains('"');
        if !bare || ["!", "(", ")"].contains(&w.as_str()) {
            continue;
        }
        let Some(factory) = gst::ElementFactory::find(&w) else {
            return Err(TemplateError::Parse(format!("no element \"{w}\"")));
        };
        let class = factory.metadata(gst::ELEMENT_METADATA_KLASS).unwrap_or("").to_string();
        if let Some(why) = factory_refusal(&w, &class) {
            // Named by its `name=` if it has one, as the check after parsing names it.
            let own = words[i + 1..].iter().take_while(|p| p.contains('=')).find_map(|p| p.strip_prefix("name="));
            let element = own.map_or_else(|| w.clone(), |n| n.trim_matches('"').to_string());
            return Err(TemplateError::Refused { element, factory: w, class, why });
        }
    }
    Ok(())
}

/// Parses `text` as a launch description and checks every element in it (see the module docs).
pub fn parse(text: &str) -> Result<gst::Pipeline, TemplateError> {
    known_elements(text)?;
    let element = gst::parse::launch_full(text, None, gst::ParseFlags::FATAL_ERRORS)
        .map_err(|e| TemplateError::Parse(e.to_string()))?;
    let pipeline = element.downcast::<gst::Pipeline>().map_err(|_| TemplateError::NotAPipeline)?;
    check(&pipeline)?;
    Ok(pipeline)
}

/// Checks every element of `pipeline`, inside `( ... )` groups too. The allowed bins (decodebin,
/// uridecodebin, rtspsrc) are taken as a whole: what they hold is theirs, not the template's.
pub fn check(pipeline: &gst::Pipeline) -> Result<(), TemplateError> {
    let mut appsinks = Vec::new();
    check_bin(pipeline.upcast_ref(), &mut appsinks)?;
    if appsinks != ["frames"] {
        let found = if appsinks.is_empty() { "none".to_string() } else { appsinks.join(", ") };
        return Err(TemplateError::Appsinks(found));
    }
    Ok(())
}

fn check_bin(bin: &gst::Bin, appsinks: &mut Vec<String>) -> Result<(), TemplateError> {
    // A bin lists its children newest first: the template's order is the reverse, and the first element
    // refused is the first one in the template.
    for element in bin.children().into_iter().rev() {
        check_element(&element)?;
        let factory = element.factory().map(|f| f.name().to_string());
        match factory.as_deref() {
            Some("appsink") => appsinks.push(element.name().to_string()),
            Some("bin") | None => {
                if let Some(group) = element.downcast_ref::<gst::Bin>() {
                    check_bin(group, appsinks)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Why a factory may not be in a camera pipeline, if it may not (the allow-list by name and class).
fn factory_refusal(factory_name: &str, class: &str) -> Option<&'static str> {
    let by_name = ALLOWED_FACTORIES.contains(&factory_name);
    let refused_word = REFUSED_CLASS_WORDS.iter().any(|w| class.split('/').any(|part| part == *w));
    if !by_name && (refused_word || !ALLOWED_CLASSES.iter().any(|c| class.starts_with(c))) {
        return Some(if refused_word {
            "it can write, send or encode data"
        } else {
            "it is not on the allow-list of sources, decoders and converters"
        });
    }
    None
}

fn check_element(element: &gst::Element) -> Result<(), TemplateError> {
    let name = element.name().to_string();
    // A bin made by the parser for `( ... )`: its children are checked one by one.
    let Some(factory) = element.factory() else {
        return if element.is::<gst::Bin>() {
            Ok(())
        } else {
            Err(TemplateError::Refused {
                element: name,
                factory: "?".into(),
                class: "?".into(),
                why: "unknown element",
            })
        };
    };
    let factory_name = factory.name().to_string();
    let class = factory.metadata(gst::ELEMENT_METADATA_KLASS).unwrap_or("").to_string();
    let refuse = |why| {
        Err(TemplateError::Refused { element: name.clone(), factory: factory_name.clone(), class: class.clone(), why })
    };
    if factory_name == "bin" {
        return Ok(());
    }
    if let Some(why) = factory_refusal(&factory_name, &class) {
        return refuse(why);
    }
    if factory_name == "appsink" && name != "frames" {
        return refuse("the only appsink is iobox's own `frames`");
    }
    // Allowed elements with a property that writes the stream to disk.
    for property in ["download", "dump"] {
        if element.find_property(property).is_some_and(|p| p.value_type() == bool::static_type())
            && element.property::<bool>(property)
        {
            return refuse("a property set here writes or prints the stream");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> String {
        crate::capture::init().unwrap();
        match parse(text) {
            Ok(_) => panic!("accepted: {text}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn missing_elements_are_refused_before_gstreamer_parses_the_text() {
        crate::capture::init().unwrap();
        // A fuzzed template that made GStreamer 1.22's parser crash the process (SIGSEGV): two missing
        // elements and a dangling reference.
        let crash = "apps psink name=frames t. ! queue leaky=downstream ! videoconvert ! jpegenc ! multifilesication=raw-%05d.jpg";
        let e = parse(crash).unwrap_err().to_string();
        assert!(e.contains("no element \"apps\""), "{e}");
        let e = parse("videotestsrc ! videoconvrt ! appsink name=frames").unwrap_err().to_string();
        assert!(e.contains("no element \"videoconvrt\""), "{e}");
        // Quoted values, caps, references and bins are not element names.
        assert_eq!(words("a p=\"x ! y\" ! b"), ["a", "p=\"x ! y\"", "!", "b"]);
        known_elements(
            "videotestsrc ! video/x-raw,width=64 ! queue name=q q. ! ( videoconvert ) ! appsink name=frames",
        )
        .unwrap();
        // A loop back through a duplicated name made GStreamer's linking recurse until the stack ran out.
        let e = parse("videotestsrc ! queue name=t ! videoconvert ! queue name=t ! appsink name=frames").unwrap_err();
        assert!(e.to_string().contains("two elements are named \"t\""), "{e}");
    }

    #[test]
    fn the_built_in_templates_pass() {
        crate::capture::init().unwrap();
        for text in [
            include_str!("../../pipelines/file.gst"),
            include_str!("../../pipelines/rtsp.gst"),
            include_str!("../../pipelines/v4l2.gst"),
            include_str!("../../pipelines/test.gst"),
        ] {
            parse(text.trim()).unwrap_or_else(|e| panic!("{text}: {e}"));
        }
    }

    #[test]
    fn a_tee_to_a_file_sink_is_refused_naming_the_element() {
        // The hole as reported: a tee next to `frames` writing raw JPEGs.
        let err = refused(
            "videotestsrc ! tee name=t ! queue ! videoconvert ! video/x-raw,format=RGB ! appsink name=frames t. ! queue leaky=downstream ! videoconvert ! jpegenc ! multifilesink location=raw-%05d.jpg",
        );
        assert!(err.contains("`t`") && err.contains("tee"), "{err}");
    }

    #[test]
    fn every_way_out_is_refused() {
        let frames = "videoconvert ! video/x-raw,format=RGB ! appsink name=frames";
        for (text, element) in [
            (format!("videotestsrc ! {frames} videotestsrc ! filesink name=w location=x"), "filesink"),
            (format!("videotestsrc ! jpegenc ! jpegdec ! {frames}"), "jpegenc"),
            (format!("videotestsrc ! identity dump=true ! {frames}"), "identity"),
            (format!("videotestsrc ! queue2 temp-template=/tmp/x-XXXXXX ! {frames}"), "queue2"),
            (format!("videotestsrc ! {frames} videotestsrc ! udpsink host=127.0.0.1 port=9"), "udpsink"),
            (format!("videotestsrc ! {frames} videotestsrc ! fakesink"), "fakesink"),
            (format!("videotestsrc ! {frames} videotestsrc ! appsink name=other"), "appsink"),
            (format!("videotestsrc ! {frames} ( videotestsrc ! filesink location=x )"), "filesink"),
            (format!("uridecodebin download=true uri=file:///nonexistent ! {frames}"), "uridecodebin"),
            (format!("videotestsrc ! {frames} videotestsrc ! x264enc ! matroskamux ! fakesink"), "x264enc"),
        ] {
            let err = refused(&text);
            assert!(err.contains(element) && err.contains("not allowed"), "{text}: {err}");
        }
        // A file URI on the sink side of a link becomes a file sink.
        let err = refused(&format!("videotestsrc ! {frames} videotestsrc ! file:///tmp/iobox-raw.bin"));
        assert!(err.contains("not allowed"), "{err}");
    }

    #[test]
    fn frames_must_be_the_one_appsink() {
        let err = refused("videotestsrc ! videoconvert ! video/x-raw,format=RGB ! fakesink name=frames");
        assert!(err.contains("fakesink"), "{err}");
        let err = refused("videotestsrc ! videoconvert ! appsink name=sink");
        assert!(err.contains("appsink"), "{err}");
    }
}
