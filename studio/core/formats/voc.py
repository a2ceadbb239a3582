"""Pascal VOC XML (one file per image): reader and writer.

Box numbers are read and written as pixel edges, with no +-1: Studio's continuous box
(x, y, w, h) is xmin = x, ymin = y, xmax = x + w, ymax = y + h, so a full-image box is
0, 0, W, H. That is how the tools people label with write and read VOC (LabelImg,
X-AnyLabeling, CVAT, torchvision's VOC reader, Ultralytics), so a box lands on the same
pixels in each of them. (The 1-based devkit convention would shift every box by one
pixel against those tools.) VOC has no polygons; Studio adds a non-standard <polygon>
element per part (<pt><x/><y/></pt> points in Studio's continuous coordinates), which
other tools ignore and this reader reads back.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from pathlib import Path, PurePath

from studio.core.errors import FormatError
from studio.core.formats.common import (
    ImageResolver,
    atomic_output,
    first_seen_classes,
    fmt_num,
    link_or_copy,
    parse_xml,
    read_text_file,
    unique_stems,
    without_not_a_class,
    write_text_atomic,
    xml_text,
)
from studio.core.geometry import bbox_of_polygons
from studio.core.kinds import ShapeKind, Split
from studio.core.records import (
    FLAG_FIELDS,
    NO_ATTRIBUTES,
    SPLITS,
    AnnotationRecord,
    AnnotationSpec,
    Attributes,
    DatasetSpec,
    ExportSnapshot,
    ImageSpec,
)

# --- reading -------------------------------------------------------------------------------


def read_voc(
    path: Path, images_dir: Path | None = None, class_names: list[str] | None = None
) -> DatasetSpec:
    """Read one VOC .xml file or a folder of them (recursive, ImageSets skipped).

    The image is the <path> element where that file exists, else <filename> looked up in
    the usual places plus ../JPEGImages/. Image keys are the XML paths relative to the
    folder read, without ".xml"; splits come from ImageSets/Main/{train,val,test}.txt
    when present. Classes are `class_names` (if given) followed by the names found, in
    order of appearance. <truncated>, <difficult> and <occluded> ("1"/"true") become the
    shape's attributes.
    """
    path = Path(path)
    root, files, single = _voc_files(path)
    spec = DatasetSpec()
    resolver = ImageResolver(images_dir)
    splits = _read_image_sets(root)
    keys_by_path: dict[Path, str] = {}
    found: dict[str, None] = {}
    skipped = 0
    for f in files:
        rel = f.relative_to(root).with_suffix("").as_posix()
        r = parse_xml(f)
        if r.tag != "annotation":
            if single or r.tag == "annotations":
                hint = "; it is CVAT's XML: import it as cvat" if r.tag == "annotations" else ""
                raise FormatError(f, "root", f"<{r.tag}> is not a VOC <annotation>{hint}")
            skipped += 1
            continue
        img = _image_path(f, r, resolver)
        key = keys_by_path.get(img)
        if key is None:
            key = keys_by_path[img] = rel
            w, h = (_size(f, r, t) for t in ("width", "height"))
            spec.images.append(ImageSpec(key, img, w, h, splits.get(f.stem), rel))
        for n, obj in enumerate(r.findall("object"), 1):
            ann = _object(f, rel, key, n, obj)
            found[ann.class_name] = None
            spec.annotations.append(ann)
    # labelme2voc's class_names.txt starts with "_background_": not a class here.
    spec.classes = first_seen_classes(found, without_not_a_class(class_names, spec.warnings))
    if skipped:
        spec.warnings.append(f"{skipped} XML files are not VOC annotations and were skipped")
    return spec


def _voc_files(path: Path) -> tuple[Path, list[Path], bool]:
    """(root, XML files, whether one file was given) of what the user named."""
    if path.is_file():
        return path.parent, [path], True
    if not path.is_dir():
        raise FormatError(path, "", "no such file or folder")
    files = sorted(p for p in path.rglob("*.xml") if "ImageSets" not in p.relative_to(path).parts)
    if not files:
        raise FormatError(path, "", "no .xml files in this folder")
    return path, files, False


def _read_image_sets(root: Path) -> dict[str, str]:
    """XML stem -> split from ImageSets/Main/<split>.txt next to or above the folder read."""
    out: dict[str, str] = {}
    for base in (root, root.parent):
        main = base / "ImageSets" / "Main"
        if not main.is_dir():
            continue
        for split in SPLITS:
            f = main / f"{split}.txt"
            if f.is_file():
                for line in read_text_file(f, "image list").splitlines():
                    toks = line.split()
                    if toks:
                        out.setdefault(toks[0], split)
        break
    return out


def _image_path(f: Path, r: ET.Element, resolver: ImageResolver) -> Path:
    p = (r.findtext("path") or "").strip()
    if p and Path(p).is_absolute() and Path(p).is_file():
        return Path(p)
    name = (r.findtext("filename") or "").strip()
    if not name:
        if p:
            return resolver.resolve(p, f, "<path>")
        raise FormatError(f, "<filename>", "missing; the XML does not name its image")
    extra = [f.parent.parent / "JPEGImages" / name]
    return resolver.resolve(name, f, "<filename>", extra=extra)


def _size(f: Path, r: ET.Element, tag: str) -> int | None:
    text = (r.findtext(f"size/{tag}") or "").strip()
    if not text:
        return None
    try:
        v = float(text)
    except ValueError:
        raise FormatError(f, f"<size><{tag}>", f"not a number: {text!r}") from None
    if v < 0 or not v.is_integer():
        raise FormatError(f, f"<size><{tag}>", f"not a pixel count: {text!r}")
    # Many tools write 0 when they did not know the size.
    return int(v) or None


def _number(f: Path, where: str, el: ET.Element | None) -> float:
    text = (el.text or "").strip() if el is not None else ""
    if not text:
        raise FormatError(f, where, "missing")
    try:
        v = float(text)
    except ValueError:
        raise FormatError(f, where, f"not a number: {text!r}") from None
    if v != v or v in (float("inf"), float("-inf")):
        raise FormatError(f, where, f"not a finite number: {text!r}")
    return v


def _flag(obj: ET.Element, tag: str) -> bool:
    return (obj.findtext(tag) or "").strip().lower() in ("1", "true", "yes")


def _attributes(obj: ET.Element) -> Attributes:
    """VOC's per-object flags; LabelImg writes truncated and difficult, CVAT occluded."""
    found = Attributes(*(_flag(obj, t) for t in FLAG_FIELDS))
    return NO_ATTRIBUTES if found.is_default() else found


def _object(f: Path, rel: str, key: str, n: int, obj: ET.Element) -> AnnotationSpec:
    ow = f"object {n}"
    name = (obj.findtext("name") or "").strip()
    if not name:
        raise FormatError(f, f"{ow} <name>", "missing class name")
    polys = obj.findall("polygon")
    if polys:
        parts = []
        for j, poly in enumerate(polys, 1):
            part: list[float] = []
            for k, pt in enumerate(poly.findall("pt"), 1):
                pw = f"{ow} <polygon> {j} <pt> {k}"
                part += [
                    _number(f, f"{pw} <x>", pt.find("x")),
                    _number(f, f"{pw} <y>", pt.find("y")),
                ]
            if len(part) < 6:
                raise FormatError(f, f"{ow} <polygon> {j}", "fewer than 3 points")
            parts.append(part)
        return AnnotationSpec(
            key,
            name,
            ShapeKind.POLYGON,
            bbox_of_polygons(parts),
            polygons=parts,
            where=f"{rel}: {ow}",
            attributes=_attributes(obj),
        )
    box = obj.find("bndbox")
    if box is None:
        raise FormatError(f, f"{ow} <bndbox>", "missing")
    x0, y0, x1, y1 = (
        _number(f, f"{ow} <bndbox><{t}>", box.find(t)) for t in ("xmin", "ymin", "xmax", "ymax")
    )
    return AnnotationSpec(
        key, name, ShapeKind.BOX, (x0, y0, x1 - x0, y1 - y0), where=f"{rel}: {ow}",
        attributes=_attributes(obj),
    )  # fmt: skip


# --- writing -------------------------------------------------------------------------------


def _annotation_root(
    folder: str, file_name: str, img_dst: Path, width: int, height: int
) -> ET.Element:
    """The <annotation> element of one image, without objects."""
    root = ET.Element("annotation")
    _sub(root, "folder", folder)
    _sub(root, "filename", file_name)
    _sub(root, "path", str(img_dst.absolute()))
    source = _sub(root, "source")
    _sub(source, "database", "Studio")
    size = _sub(root, "size")
    _sub(size, "width", str(width))
    _sub(size, "height", str(height))
    _sub(size, "depth", "3")
    _sub(root, "segmented", "0")
    return root


def _object_element(root: ET.Element, name: str, a: AnnotationRecord) -> None:
    """Add one <object>: a bndbox of pixel edges (x .. x + w), and Studio's <polygon>
    elements in Studio's continuous pixels for polygons."""
    obj = _sub(root, "object")
    _sub(obj, "name", name)
    _sub(obj, "pose", "Unspecified")
    at = a.attributes
    _sub(obj, "truncated", "1" if at.truncated else "0")
    # A crowd region: VOC's evaluation ignores "difficult" objects as COCO's ignores crowds.
    _sub(obj, "difficult", "1" if at.difficult or a.iscrowd else "0")
    # Not in the devkit's schema but written by CVAT and read by most tools; others skip it.
    _sub(obj, "occluded", "1" if at.occluded else "0")
    x, y, w, h = a.bbox
    is_polygon = a.kind == ShapeKind.POLYGON and a.polygons
    if is_polygon:
        x, y, w, h = bbox_of_polygons(a.polygons)
    box = _sub(obj, "bndbox")
    for tag, v in (("xmin", x), ("ymin", y), ("xmax", x + w), ("ymax", y + h)):
        _sub(box, tag, fmt_num(v))
    if is_polygon:
        for part in a.polygons:
            poly = _sub(obj, "polygon")
            for px, py in zip(part[0::2], part[1::2], strict=True):
                pt = _sub(poly, "pt")
                _sub(pt, "x", fmt_num(px))
                _sub(pt, "y", fmt_num(py))


def _sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    el = ET.SubElement(parent, tag)
    if text is not None:
        # XML 1.0 cannot hold most control characters, even escaped: a class name with
        # one would make a file no reader accepts.
        el.text = xml_text(text)
    return el


def write_voc(snapshot: ExportSnapshot, out: Path) -> list[str]:
    """Write a VOC folder: Annotations/<stem>.xml, JPEGImages/, ImageSets/Main/<split>.txt.

    Images are hard-linked (else copied) into JPEGImages under unique names, which
    <filename> and <path> (absolute) name. Box numbers are written exactly, integers
    without ".0". Polygons get their bndbox plus Studio's <polygon> elements; masks are
    written as their boxes. Returns warnings about what the format could not keep.
    """
    out = Path(out)
    names = {c.id: c.name for c in snapshot.classes}
    by_image: dict[int, list[AnnotationRecord]] = defaultdict(list)
    for a in snapshot.annotations:
        by_image[a.image_id].append(a)
    stems = unique_stems(snapshot.images, nested=False)
    split_stems: dict[str, list[str]] = {s: [] for s in SPLITS}
    counts: Counter[str] = Counter()

    for im in snapshot.images:
        stem = stems[im.id]
        file_name = stem + PurePath(im.path).suffix
        img_dst = out / "JPEGImages" / file_name
        link_or_copy(im.abs_path, img_dst)
        split_stems.get(im.split, split_stems[Split.TRAIN]).append(stem)

        root = _annotation_root(out.name, file_name, img_dst, im.width, im.height)
        for a in by_image.get(im.id, ()):
            _object_element(root, names[a.class_id], a)
            if a.kind == ShapeKind.MASK:
                counts["mask"] += 1
        tree = ET.ElementTree(root)
        ET.indent(tree)
        with atomic_output(out / "Annotations" / f"{stem}.xml", binary=True) as f:
            tree.write(f, encoding="utf-8", xml_declaration=False)

    main = out / "ImageSets" / "Main"
    for split, ss in split_stems.items():
        write_text_atomic(main / f"{split}.txt", "".join(s + "\n" for s in ss))

    warnings = []
    if any(xml_text(c.name) != c.name for c in snapshot.classes):
        warnings.append(
            "class names with control characters written with them replaced by U+FFFD "
            "(XML cannot hold them)"
        )
    if counts["mask"]:
        warnings.append(f"{counts['mask']} masks written as their boxes (VOC has no masks)")
    anns = snapshot.annotations
    crowds = sum(a.iscrowd for a in anns)
    if crowds:
        warnings.append(
            f"{crowds} crowd regions (iscrowd) written as difficult objects: VOC has no "
            "crowd flag, and its evaluation ignores difficult objects as COCO's ignores crowds"
        )
    extra = sum(a.attributes.group_id is not None or bool(a.attributes.notes) for a in anns)
    if extra:
        warnings.append(
            f"group ids and notes of {extra} shapes not written: VOC has no place for them"
        )
    return warnings
